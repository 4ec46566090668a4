# Tests of documented behaviour (issue #16): one program per topic, each
# running its cases in children with their own PCMALLOC_CONF, environment,
# affinity mask or seccomp filter.  Included from CMakeLists.txt.  They
# call malloc/free, so they need the override (not for tests/sanitize).
foreach(m doc_reclaim doc_foreign doc_cpu doc_os doc_bgthread doc_stats)
	pc_test(test_${m} test_${m}.c LIBS pcmalloc_static LABELS unit)
	# Every malloc/free pair must really run; frees of non-heap
	# pointers are on purpose.
	target_compile_options(test_${m} PRIVATE -fno-builtin
		$<$<C_COMPILER_ID:GNU>:-Wno-free-nonheap-object>)
endforeach()

# PCMALLOC_CONF under LD_PRELOAD, read before libc sets environ: a plain
# program (not linked with pcmalloc) that allocates from .preinit_array.
add_executable(doc_preinit doc_preinit.c)
target_compile_options(doc_preinit PRIVATE -Wall -Wextra -fno-builtin)
target_link_libraries(doc_preinit PRIVATE ${CMAKE_DL_LIBS})
add_executable(test_doc_preload test_doc_preload.c)
target_include_directories(test_doc_preload PRIVATE ${CMOCKA_INCLUDE_DIR}
	${PROJECT_SOURCE_DIR}/include)
target_compile_definitions(test_doc_preload PRIVATE _GNU_SOURCE)
target_compile_options(test_doc_preload PRIVATE -Wall -Wextra)
target_link_libraries(test_doc_preload PRIVATE ${CMOCKA_LIBRARY})
add_dependencies(test_doc_preload pcmalloc doc_preinit)
add_test(NAME test_doc_preload COMMAND test_doc_preload
	$<TARGET_FILE:pcmalloc> $<TARGET_FILE:doc_preinit>)
set_tests_properties(test_doc_preload PROPERTIES LABELS unit TIMEOUT 300)
