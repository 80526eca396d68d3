# Imported targets for every external dependency (see docs and ../shared/notes):
#   MPI::MPI_C MPI::MPI_CXX, drp::hdf5 (parallel HDF5, C API), PkgConfig::CFITSIO,
#   PkgConfig::WCSLIB, Eigen3::Eigen, Boost::program_options, GTest::gtest.
find_package(MPI REQUIRED COMPONENTS C CXX)

# Parallel HDF5: must be preferred before find_package; Debian ships no parallel C++ API.
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "drp needs parallel HDF5 (libhdf5-openmpi-dev); found a serial one: "
                      "${HDF5_C_LIBRARIES}. Remove libhdf5-dev and the CMake cache.")
endif()
if(NOT TARGET drp::hdf5)
  add_library(drp_hdf5 INTERFACE)
  add_library(drp::hdf5 ALIAS drp_hdf5)
  if(TARGET HDF5::HDF5)
    target_link_libraries(drp_hdf5 INTERFACE HDF5::HDF5 MPI::MPI_C)
  else()
    target_include_directories(drp_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS})
    target_link_libraries(drp_hdf5 INTERFACE ${HDF5_C_LIBRARIES} MPI::MPI_C)
    target_compile_definitions(drp_hdf5 INTERFACE ${HDF5_C_DEFINITIONS})
  endif()
endif()

find_package(PkgConfig REQUIRED)
pkg_check_modules(CFITSIO REQUIRED IMPORTED_TARGET cfitsio)
pkg_check_modules(WCSLIB REQUIRED IMPORTED_TARGET wcslib)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)

# Python with Debian's astropy/h5py/numpy for interoperability tests. The interpreter first
# on PATH may be a non-Debian one without them, so the Debian one is named explicitly.
find_program(DRP_DEBIAN_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
