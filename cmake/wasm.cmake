# Settings of the WebAssembly build (included from the top CMakeLists.txt
# when the toolchain is emscripten's). scripts/build_wasm.sh configures it.
#
# Two flavours, one build folder each (scripts/build_wasm.sh):
# - threaded (the default), osprey.js: every object is built with threads
#   (wasm atomics and shared memory), and the module runs on a pool of Web
#   Workers. Shared memory needs a cross-origin isolated page, and WebGPU
#   needs it too (the module's thread waits on a shared word for the GPU).
# - single-threaded (OSPREY_WASM_PTHREADS=OFF), osprey-single.js: no atomics
#   and no shared memory, so it runs on any page, served from anywhere, on
#   the CPU and one thread.
# SIMD128 is on for the kernels in both (every current browser and Node 16+ have it).
set(OSPREY_WASM_PCRE2 "" CACHE PATH "Install prefix of PCRE2 built with emscripten (scripts/build_wasm.sh makes it)")
option(OSPREY_WASM_PTHREADS "Build the threaded module (osprey.js); OFF: the single-threaded one (osprey-single.js)" ON)
set(OSPREY_WASM_THREADS 4 CACHE STRING "Web Workers the threaded module starts with (its largest thread pool)")
set(OSPREY_BUILD_BENCH OFF CACHE BOOL "" FORCE)
if(NOT OSPREY_WASM_PTHREADS)
  set(OSPREY_WASM_THREADS 1 CACHE STRING "" FORCE)
endif()

add_compile_options(-fexceptions -msimd128)
add_compile_definitions(OSPREY_WASM_THREADS=${OSPREY_WASM_THREADS})
add_link_options(-fexceptions -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sINITIAL_MEMORY=64MB -sTOTAL_STACK=1MB)
if(OSPREY_WASM_PTHREADS)
  add_compile_options(-pthread)
  add_link_options(-pthread -sPTHREAD_POOL_SIZE=${OSPREY_WASM_THREADS} -sDEFAULT_PTHREAD_STACK_SIZE=1MB)
endif()
# Threads::Threads is only the flag above.
add_library(Threads::Threads INTERFACE IMPORTED)

# nlohmann/json (header-only) comes from the host's Debian package, through
# a folder that holds only it: all of /usr/include would put the host's C
# library headers in front of emscripten's.
find_path(OSPREY_HOST_NLOHMANN nlohmann/json.hpp PATHS /usr/include NO_DEFAULT_PATH NO_CMAKE_FIND_ROOT_PATH REQUIRED)
file(MAKE_DIRECTORY ${PROJECT_BINARY_DIR}/host-include)
file(CREATE_LINK ${OSPREY_HOST_NLOHMANN}/nlohmann ${PROJECT_BINARY_DIR}/host-include/nlohmann SYMBOLIC)
add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
  INTERFACE_INCLUDE_DIRECTORIES ${PROJECT_BINARY_DIR}/host-include)

if(NOT EXISTS "${OSPREY_WASM_PCRE2}/lib/libpcre2-8.a")
  message(FATAL_ERROR "The WebAssembly build needs PCRE2 built with emscripten: OSPREY_WASM_PCRE2 "
    "(\"${OSPREY_WASM_PCRE2}\") has no lib/libpcre2-8.a. scripts/build_wasm.sh builds it.")
endif()
add_library(PkgConfig::PCRE2 STATIC IMPORTED)
set_target_properties(PkgConfig::PCRE2 PROPERTIES
  IMPORTED_LOCATION "${OSPREY_WASM_PCRE2}/lib/libpcre2-8.a"
  INTERFACE_INCLUDE_DIRECTORIES "${OSPREY_WASM_PCRE2}/include"
  INTERFACE_COMPILE_DEFINITIONS PCRE2_STATIC)
