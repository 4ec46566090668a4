# Tests of documented behaviour (issue #16): one program per topic, each
# running its cases in children with their own PCMALLOC_CONF, environment,
# affinity mask or seccomp filter.  Included from CMakeLists.txt.
foreach(m doc_reclaim doc_foreign doc_cpu doc_os doc_bgthread)
	pc_test(test_${m} test_${m}.c LIBS pcmalloc_static LABELS unit)
	# Every malloc/free pair must really run; frees of non-heap
	# pointers are on purpose.
	target_compile_options(test_${m} PRIVATE -fno-builtin
		$<$<C_COMPILER_ID:GNU>:-Wno-free-nonheap-object>)
endforeach()
