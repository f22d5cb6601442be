#!/usr/bin/env bash
# check-freestanding.sh - proves that the wire codec (src/mqtt) and the device logic of
# midge-sensor and the ESP32 example (src/device) build for a microcontroller: no heap
# allocation, no POSIX, no C library beyond six string functions.
#
# For each target (the host with gcc, 32-bit x86 with gcc -m32, Cortex-M with clang
# --target=armv7m-none-eabi, 32-bit RISC-V (ESP32-C3) with clang --target=riscv32) it
# compiles every src/mqtt/*.c, src/device/*.c and scripts/freestanding/main.c with -ffreestanding
# -fno-builtin -nostdlib -nostdinc -fno-stack-protector -Os: the only headers are the
# compiler's freestanding ones and scripts/freestanding/string.h. It then links all the
# objects into one (ld -r, no libc, no crt) and fails when
#   - a symbol is still undefined that is not in ALLOWED (memcpy memmove memset memcmp
#     memchr strlen) or a compiler runtime helper (libgcc / compiler-rt: 64-bit arithmetic
#     on 32-bit targets, __aeabi_*, __udivdi3, ...; and single/double precision arithmetic
#     on targets without an FPU, __addsf3, __fixsfsi, ..., which the sensor model uses),
#   - the objects hold writable global data (.data/.bss: the codec keeps no global state).
# A cross target whose compiler, linker (ld.lld: package lld) or nm (llvm-nm: package llvm)
# is missing is reported and skipped; the host target is never skipped. scripts/setup.sh
# installs lld and llvm. gcc -m32 needs no multilib here: -nostdinc uses no libc headers. Usage: scripts/check-freestanding.sh [OUTDIR]
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/freestanding}
mkdir -p "$out"

ALLOWED='^(memcpy|memmove|memset|memcmp|memchr|strlen)$'
# Compiler runtime (not a C library): 64-bit arithmetic and memory helpers of 32-bit ABIs,
# and soft-float arithmetic, conversions and comparisons for cores without an FPU.
RUNTIME='^(__aeabi_[a-z0-9_]+|__(u?div|u?mod|mul|ash[lr]|lshr)[sd]i3|__udivmoddi4|__divmoddi4|__clz[sd]i2|__ctz[sd]i2|__popcount[sd]i2|__bswap[sd]i2|__(add|sub|mul|div|neg)[sd]f[23]|__fix(uns)?[sd]f[sd]i|__float(un)?[sd]i[sd]f|__(eq|ne|lt|le|gt|ge|unord|cmp)[sd]f2|__extendsfdf2|__truncdfsf2)$'
FLAGS=(-std=c11 -Os -ffreestanding -fno-builtin -nostdlib -nostdinc -fno-stack-protector
       -fno-pic -fno-asynchronous-unwind-tables -ffunction-sections -fdata-sections
       -Wall -Wextra -Wno-unused-parameter -Werror
       -I "$root/scripts/freestanding" -I "$root/src")

srcs=("$root"/src/mqtt/*.c "$root"/src/device/*.c "$root/scripts/freestanding/main.c")
failed=0
checked=0

# check NAME CC LD NM CFLAGS...: compile, partially link, inspect.
check() {
    local name=$1 cc=$2 ld=$3 nm=$4
    shift 4
    local dir=$out/$name objs=() src obj undef bad data
    local inc
    inc=$($cc "$@" -print-resource-dir 2>/dev/null || true)
    if [ -n "$inc" ] && [ -d "$inc/include" ]; then
        inc=$inc/include # clang
    else
        inc=$($cc "$@" -print-file-name=include) # gcc
    fi
    rm -rf "$dir" && mkdir -p "$dir"
    if ! command -v "${ld%% *}" >/dev/null || ! command -v "$nm" >/dev/null ||
        ! echo 'int x;' | $cc "$@" -x c -c - -o "$dir/probe.o" 2>/dev/null; then
        if [ "$name" = host-gcc ]; then
            echo "freestanding: $name: the compiler does not work"; failed=1
        else
            echo "freestanding: $name: skipped ($cc $*, ${ld%% *} or $nm missing or unable)"
        fi
        return 0
    fi
    for src in "${srcs[@]}"; do
        obj=$dir/$(basename "$src" .c).o
        if ! $cc "$@" "${FLAGS[@]}" -isystem "$inc" -c "$src" -o "$obj"; then
            echo "freestanding: $name: $src does not compile freestanding"; failed=1
            return 0
        fi
        objs+=("$obj")
    done
    $ld -r -o "$dir/firmware.o" "${objs[@]}"
    undef=$($nm -u "$dir/firmware.o" | awk '{print $NF}' | sort -u)
    bad=$(grep -Ev "$ALLOWED" <<<"$undef" | grep -Ev "$RUNTIME" | grep -v '^$' || true)
    # Writable data: symbols of type B/b/D/d/C/S/s (bss, data, common, small data).
    data=$($nm "$dir/firmware.o" | awk '$2 ~ /^[BbDdCSsGg]$/ {print $3}' | sort -u)
    checked=$((checked + 1))
    echo "freestanding: $name: ${#objs[@]} objects, undefined: $(echo $undef)"
    if [ -n "$bad" ]; then
        echo "freestanding: $name: FAIL: symbols outside the allowed list: $(echo $bad)"
        failed=1
    fi
    if [ -n "$data" ]; then
        echo "freestanding: $name: FAIL: writable global data: $(echo $data)"
        failed=1
    fi
}

check host-gcc gcc ld nm
check i386-gcc gcc "ld -m elf_i386" nm -m32
check armv7m-clang clang ld.lld llvm-nm --target=armv7m-none-eabi -mthumb -mfloat-abi=soft
check riscv32-clang clang ld.lld llvm-nm --target=riscv32-unknown-elf -march=rv32imc

if [ "$failed" != 0 ]; then
    echo "freestanding: FAILED"
    exit 1
fi
echo "freestanding: src/mqtt and src/device passed on $checked targets (no allocator, no POSIX, no global state)"
