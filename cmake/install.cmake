# Installation: `cmake --install <build> [--prefix <dir>]` puts
#   lib/libpcmalloc.so{,.0,.0.1.0}, lib/libpcmalloc.a
#   include/pcmalloc.h
#   lib/pkgconfig/pcmalloc.pc              pkg-config --libs pcmalloc
#   lib/cmake/pcmalloc/*.cmake             find_package(pcmalloc): targets
#                                          pcmalloc::pcmalloc, pcmalloc::static
#   bin/pcmalloc                           the LD_PRELOAD launcher (Linux)
#   share/man/man1/pcmalloc.1, share/man/man3/pcmalloc.3 (+ pc_*.3 links)
#   share/doc/pcmalloc/                    README, LICENSE, docs/*.md
# under any prefix: the pkg-config file and the CMake package locate the
# prefix from their own location, so a tree installed with --prefix or
# DESTDIR can be moved.  lib is GNUInstallDirs' CMAKE_INSTALL_LIBDIR
# (lib/x86_64-linux-gnu when the prefix is /usr on Debian).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# The version lives in project() and, for C code, in include/pcmalloc.h;
# nothing is generated into the sources, so check they agree.
file(STRINGS ${PROJECT_SOURCE_DIR}/include/pcmalloc.h _pc_hdr_version
	REGEX "^#define PCMALLOC_VERSION \"")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" _pc_hdr_version "${_pc_hdr_version}")
if(NOT _pc_hdr_version STREQUAL PROJECT_VERSION)
	message(WARNING "include/pcmalloc.h says PCMALLOC_VERSION "
		"\"${_pc_hdr_version}\" but project() says ${PROJECT_VERSION}: "
		"keep them in sync")
endif()

# Names as consumers see them: pcmalloc::pcmalloc (shared) and
# pcmalloc::static, also inside this build for add_subdirectory() users.
set_target_properties(pcmalloc_static PROPERTIES EXPORT_NAME static)
add_library(pcmalloc::pcmalloc ALIAS pcmalloc)
add_library(pcmalloc::static ALIAS pcmalloc_static)

# Linking pcmalloc must replace malloc even in a program that calls no pc_*
# function, e.g. C++ code whose only allocations are new/delete (which reach
# malloc from inside libstdc++):
# - shared: with --as-needed (the default of Debian's and Ubuntu's gcc) the
#   linker would drop libpcmalloc.so from such a program; consumers of
#   pcmalloc::pcmalloc link with --no-as-needed.  (CMake < 3.24 cannot wrap
#   one library in --push-state; the pkg-config file does.)
# - static: the archive member with malloc would not be pulled in, since
#   references from shared libraries do not pull archive members; consumers
#   of pcmalloc::static get -u malloc.
set(PC_PC_LIBS "-L\${libdir} -lpcmalloc")
set(PC_PC_LIBS_PRIVATE "-pthread")
if(PCMALLOC_OVERRIDE AND NOT WIN32 AND NOT APPLE)
	target_link_options(pcmalloc INTERFACE "LINKER:--no-as-needed")
	target_link_options(pcmalloc_static INTERFACE "LINKER:--undefined=malloc")
	set(PC_PC_LIBS "-L\${libdir} -Wl,--push-state,--no-as-needed -lpcmalloc -Wl,--pop-state")
	set(PC_PC_LIBS_PRIVATE "-pthread -Wl,--undefined=malloc")
endif()

install(TARGETS pcmalloc pcmalloc_static EXPORT pcmalloc-targets
	RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
	LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
	ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
	INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/pcmalloc.h
	DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# CMake package.
set(PC_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/pcmalloc)
install(EXPORT pcmalloc-targets NAMESPACE pcmalloc::
	FILE pcmalloc-targets.cmake DESTINATION ${PC_CMAKEDIR})
configure_package_config_file(
	${PROJECT_SOURCE_DIR}/cmake/pcmalloc-config.cmake.in
	${PROJECT_BINARY_DIR}/pcmalloc-config.cmake
	INSTALL_DESTINATION ${PC_CMAKEDIR}
	PATH_VARS CMAKE_INSTALL_BINDIR)
# 0.x: a minor release may change the API.
write_basic_package_version_file(
	${PROJECT_BINARY_DIR}/pcmalloc-config-version.cmake
	COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/pcmalloc-config.cmake
	${PROJECT_BINARY_DIR}/pcmalloc-config-version.cmake
	DESTINATION ${PC_CMAKEDIR})

# pkg-config file.  prefix is found from the .pc file's own directory
# (${pcfiledir}, understood by pkg-config and pkgconf) unless the libdir was
# given as an absolute path.
set(PC_PKGCONFIGDIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}"
		OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
	set(PC_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
	file(RELATIVE_PATH _pc_up /pc_prefix/${PC_PKGCONFIGDIR} /pc_prefix)
	string(REGEX REPLACE "/$" "" _pc_up "${_pc_up}")
	set(PC_PC_PREFIX "\${pcfiledir}/${_pc_up}")
endif()
foreach(d LIBDIR INCLUDEDIR)
	if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
		set(PC_PC_${d} "${CMAKE_INSTALL_${d}}")
	else()
		set(PC_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
	endif()
endforeach()
configure_file(${PROJECT_SOURCE_DIR}/pcmalloc.pc.in
	${PROJECT_BINARY_DIR}/pcmalloc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pcmalloc.pc DESTINATION ${PC_PKGCONFIGDIR})

# Launcher and manual pages: the launcher is LD_PRELOAD-based, Linux only.
if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
	# The copy in <build>/tools finds <build>/libpcmalloc.so.0; the installed
	# one looks in the libdir relative to the bindir first.
	if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
		set(PC_LAUNCHER_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
	else()
		file(RELATIVE_PATH PC_LAUNCHER_LIBDIR
			/pc_prefix/${CMAKE_INSTALL_BINDIR}
			/pc_prefix/${CMAKE_INSTALL_LIBDIR})
	endif()
	configure_file(${PROJECT_SOURCE_DIR}/tools/pcmalloc
		${PROJECT_BINARY_DIR}/tools/pcmalloc @ONLY)
	install(PROGRAMS ${PROJECT_BINARY_DIR}/tools/pcmalloc
		DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
if(UNIX)
	install(FILES ${PROJECT_SOURCE_DIR}/man/pcmalloc.1
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
	install(FILES ${PROJECT_SOURCE_DIR}/man/pcmalloc.3
		DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
	# `man pc_malloc` etc. open pcmalloc(3).
	set(_pc_links)
	foreach(f pc_malloc pc_free pc_calloc pc_realloc pc_reallocarray
			pc_posix_memalign pc_aligned_alloc pc_memalign
			pc_malloc_usable_size pc_free_sized pc_trim pc_stats_print
			pc_stat_get pc_check pc_version)
		if(NOT EXISTS ${PROJECT_BINARY_DIR}/man/${f}.3)
			file(WRITE ${PROJECT_BINARY_DIR}/man/${f}.3
				".so man3/pcmalloc.3\n")
		endif()
		list(APPEND _pc_links ${PROJECT_BINARY_DIR}/man/${f}.3)
	endforeach()
	install(FILES ${_pc_links} DESTINATION ${CMAKE_INSTALL_MANDIR}/man3)
endif()

install(FILES ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/LICENSE
	DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
	DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
