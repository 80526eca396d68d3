# Writes the drp version header (run at build time by the drp_version_header target).
# Inputs: OUT, VERSION, SOURCE_DIR, BUILD_TYPE.
set(commit "unknown")
set(dirty "")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND ${GIT_EXECUTABLE} rev-parse HEAD WORKING_DIRECTORY ${SOURCE_DIR}
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  if(rc EQUAL 0)
    set(commit "${out}")
    # Uncommitted changes to tracked files make the build "dirty": the commit alone does not
    # describe the code that ran.
    execute_process(COMMAND ${GIT_EXECUTABLE} diff-index --quiet HEAD --
                    WORKING_DIRECTORY ${SOURCE_DIR} RESULT_VARIABLE drc ERROR_QUIET)
    if(NOT drc EQUAL 0)
      set(dirty "-dirty")
    endif()
  endif()
endif()
set(text "// Generated at build time by drp/cmake/write_version.cmake. Do not edit.
#pragma once
#define DRP_VERSION_STRING \"${VERSION}\"
#define DRP_GIT_COMMIT \"${commit}${dirty}\"
#define DRP_BUILD_TYPE \"${BUILD_TYPE}\"
")
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
