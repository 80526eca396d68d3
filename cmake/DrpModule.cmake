# drp_add_module(NAME <name> SOURCES ... DEPS ...): library drp_<name>, alias drp::<name>,
# public headers in <name>/include. Compiled warning-clean with -Wall -Wextra.
function(drp_add_module)
  cmake_parse_arguments(M "" "NAME" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT M_SOURCES)
    message(STATUS "drp: module ${M_NAME} has no sources yet; skipped")
    return()
  endif()
  add_library(drp_${M_NAME} ${M_SOURCES})
  add_library(drp::${M_NAME} ALIAS drp_${M_NAME})
  target_include_directories(drp_${M_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(drp_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS})
  target_compile_options(drp_${M_NAME} PRIVATE -Wall -Wextra)
endfunction()

# drp_add_test(NAME <name> SOURCES ... DEPS ... [LABELS ...] [MPI_RANKS n] [TIMEOUT s])
# A GoogleTest executable registered with CTest. With MPI_RANKS the test links the MPI-aware
# main (tests/support) and runs under mpirun -np n --oversubscribe --bind-to none.
function(drp_add_test)
  cmake_parse_arguments(T "" "NAME;MPI_RANKS;TIMEOUT" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_compile_options(${T_NAME} PRIVATE -Wall -Wextra)
  if(T_MPI_RANKS)
    target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} drp::test_mpi_main)
    add_test(NAME ${T_NAME}
             COMMAND ${MPIEXEC_EXECUTABLE} --allow-run-as-root --oversubscribe --bind-to none
                     -np ${T_MPI_RANKS} $<TARGET_FILE:${T_NAME}>)
    list(APPEND T_LABELS mpi)
  else()
    target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest_main)
    add_test(NAME ${T_NAME} COMMAND ${T_NAME})
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "DRP_SOURCE_DIR=${PROJECT_SOURCE_DIR};DRP_BUILD_DIR=${PROJECT_BINARY_DIR};DRP_PYTHON=${DRP_DEBIAN_PYTHON};DRP_SHARED_DIR=${PROJECT_SOURCE_DIR}/../shared;OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1")
endfunction()

# drp_add_module_tests(DEPS ... [LABELS ...]): every tests/*_test.cpp of the current module
# becomes a GoogleTest executable; files named *_mpi_test.cpp run under mpirun -np 2.
# Per-test needs (more ranks, longer timeouts) go in the module's CMakeLists explicitly instead.
function(drp_add_module_tests)
  cmake_parse_arguments(T "" "" "DEPS;LABELS" ${ARGN})
  list(GET T_DEPS 0 module_target)
  if(NOT TARGET ${module_target})  # the module itself has no sources yet
    return()
  endif()
  file(GLOB tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/*_test.cpp)
  foreach(src IN LISTS tests)
    get_filename_component(name ${src} NAME_WE)
    if(name MATCHES "_mpi_test$")
      drp_add_test(NAME ${name} SOURCES ${src} DEPS ${T_DEPS} LABELS ${T_LABELS} MPI_RANKS 2)
    else()
      drp_add_test(NAME ${name} SOURCES ${src} DEPS ${T_DEPS} LABELS ${T_LABELS})
    endif()
  endforeach()
endfunction()
