# Run a test program and check both its exit code and its output:
#   cmake -DEMU=<emulator or ""> -DPROG=<program> -DPASS=<regex>
#         -DFAIL=<regex> -P expect_output.cmake
# For checks decided after main returns (test_exit_flush.c): ctest's
# PASS_REGULAR_EXPRESSION alone ignores the exit code, so a crash after the
# verdict was printed would pass.
execute_process(COMMAND ${EMU} ${PROG}
	RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc STREQUAL "0")
	message(FATAL_ERROR "${PROG} exited with ${rc}")
endif()
if(NOT out MATCHES "${PASS}")
	message(FATAL_ERROR "${PROG}: no \"${PASS}\" in its output")
endif()
if(out MATCHES "${FAIL}")
	message(FATAL_ERROR "${PROG}: \"${FAIL}\" in its output")
endif()
