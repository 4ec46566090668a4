# Cross-compile for 64-bit Windows with Debian's mingw-w64 (package
# gcc-mingw-w64-x86-64, g++-mingw-w64-x86-64), msvcrt runtime.  Test
# programs run under wine through CMAKE_CROSSCOMPILING_EMULATOR, so a plain
# add_test(NAME x COMMAND <target>) and try_run work unchanged.
#   cmake -S . -B build-win -DCMAKE_TOOLCHAIN_FILE=cmake/mingw-w64-x86_64.cmake
# See docs/windows.md and .ci/windows.sh.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(_pc_tc x86_64-w64-mingw32)
# The default alternative is the win32 thread model (no libwinpthread in
# every program); -posix also works.
set(CMAKE_C_COMPILER   ${_pc_tc}-gcc)
set(CMAKE_CXX_COMPILER ${_pc_tc}-g++)
set(CMAKE_RC_COMPILER  ${_pc_tc}-windres)
set(CMAKE_AR     /usr/bin/${_pc_tc}-ar     CACHE FILEPATH "")
set(CMAKE_RANLIB /usr/bin/${_pc_tc}-ranlib CACHE FILEPATH "")

set(CMAKE_FIND_ROOT_PATH /usr/${_pc_tc})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Debian 12 has no wine64 on PATH: /usr/bin/wine picks the 64-bit loader.
if(NOT CMAKE_CROSSCOMPILING_EMULATOR)
	find_program(WINE_EXECUTABLE NAMES wine wine64 wine-stable
		PATHS /usr/bin /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
	if(WINE_EXECUTABLE)
		set(CMAKE_CROSSCOMPILING_EMULATOR ${WINE_EXECUTABLE})
	endif()
endif()
