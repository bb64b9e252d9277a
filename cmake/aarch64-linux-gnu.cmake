# Cross build for 64-bit ARM Linux with Debian's cross compiler; the tests
# run under qemu-user. The sysroot holds the arm64 builds of the libraries
# osprey links (scripts/arm64_sysroot.sh fetches them) and is passed as
# -DOSPREY_ARM64_SYSROOT=DIR.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

set(OSPREY_ARM64_SYSROOT "" CACHE PATH "arm64 libraries and headers (scripts/arm64_sysroot.sh)")
# try_compile projects read this file again and must see the same sysroot.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES OSPREY_ARM64_SYSROOT)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu ${OSPREY_ARM64_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

# pkg-config must see the arm64 .pc files only, with their /usr paths moved
# under the sysroot.
if(OSPREY_ARM64_SYSROOT)
  set(ENV{PKG_CONFIG_LIBDIR} "${OSPREY_ARM64_SYSROOT}/usr/lib/aarch64-linux-gnu/pkgconfig:${OSPREY_ARM64_SYSROOT}/usr/share/pkgconfig")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${OSPREY_ARM64_SYSROOT}")
endif()

# Static executables: qemu-user then needs no arm64 loader or library path.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64)
