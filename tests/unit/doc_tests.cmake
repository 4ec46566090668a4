# Tests of documented behaviour (issue #16): one program per topic, each
# running its cases in children with their own PCMALLOC_CONF, environment,
# affinity mask or seccomp filter.  Included from CMakeLists.txt.
foreach(m doc_reclaim)
	pc_test(test_${m} test_${m}.c LIBS pcmalloc_static LABELS unit)
	target_compile_options(test_${m} PRIVATE -fno-builtin)
endforeach()
