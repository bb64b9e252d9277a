# Settings of the WebAssembly build (included from the top CMakeLists.txt
# when the toolchain is emscripten's). scripts/build_wasm.sh configures it.
#
# Every object is built with threads (wasm atomics and shared memory), so one
# build runs single-threaded or on a pool of Web Workers; SIMD128 is on for
# the kernels (every current browser and Node 16+ have it).
set(OSPREY_WASM_PCRE2 "" CACHE PATH "Install prefix of PCRE2 built with emscripten (scripts/build_wasm.sh makes it)")
set(OSPREY_WASM_THREADS 4 CACHE STRING "Web Workers the module starts with (its largest thread pool)")
set(OSPREY_BUILD_BENCH OFF CACHE BOOL "" FORCE)

add_compile_options(-pthread -fexceptions -msimd128)
add_compile_definitions(OSPREY_WASM_THREADS=${OSPREY_WASM_THREADS})
add_link_options(-pthread -fexceptions -sALLOW_MEMORY_GROWTH=1 -sMAXIMUM_MEMORY=4GB -sINITIAL_MEMORY=64MB
  -sPTHREAD_POOL_SIZE=${OSPREY_WASM_THREADS} -sTOTAL_STACK=1MB -sDEFAULT_PTHREAD_STACK_SIZE=1MB)
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
