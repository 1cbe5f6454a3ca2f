#!/bin/sh
# test_install.sh — `cmake --install` gives a ddpm that needs nothing from the source tree: it finds the shipped
# model and the data script under PREFIX/share/ddpm (found from the program's own path, so the prefix may move),
# and a program built with `pkg-config --cflags --libs ddpm` against the installed shared library compiles and
# runs the header's example, needing only -lddpm.
# usage: test_install.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:-}
SRC=${2:-}
if [ -z "$BUILD" ] || [ ! -f "$BUILD/CMakeCache.txt" ]; then
    echo "test_install: SKIPPED: no build folder at '$BUILD'"
    exit 77
fi
if grep -q '^DDPM_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt"; then
    echo "test_install: SKIPPED: a sanitizer build (its installed library needs the sanitizer runtime)"
    exit 77
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/ddpm_install.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() {
    echo "FAIL: $*" >&2
    fails=$((fails + 1))
}

cmake --install "$BUILD" --prefix "$TMP/first" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log" >&2; exit 1; }
mv "$TMP/first" "$TMP/prefix"   # the installed tree works wherever it is moved to
P=$TMP/prefix
DDPM=$P/bin/ddpm
for f in bin/ddpm include/ddpm.h share/ddpm/models/mnist/unet/diffusion_pytorch_model.safetensors \
         share/ddpm/scripts/get-data.sh share/doc/ddpm/README.md; do
    [ -e "$P/$f" ] || fail "cmake --install wrote no $f"
done
lib=$(ls "$P"/lib*/libddpm.so 2>/dev/null | head -n 1)
[ -n "$lib" ] || fail "cmake --install wrote no libddpm.so"
pc=$(ls "$P"/lib*/pkgconfig/ddpm.pc 2>/dev/null | head -n 1)
[ -n "$pc" ] || fail "cmake --install wrote no ddpm.pc"
[ -n "$(ls "$P"/lib*/cmake/ddpm/ddpmConfig.cmake 2>/dev/null)" ] || fail "cmake --install wrote no ddpmConfig.cmake"

# the shipped files are the installed ones
"$DDPM" --version >"$TMP/out" 2>&1 || fail "installed ddpm --version failed"
grep -q -F "$P/share/ddpm" "$TMP/out" || fail "installed ddpm does not use its own share/ddpm: $(cat "$TMP/out")"
(cd "$TMP" && OMP_WAIT_POLICY=passive "$DDPM" sample --num 2 --steps 2 --threads 1 --out "$TMP/s.png") \
    >"$TMP/out" 2>&1 || fail "installed ddpm could not sample from the shipped model: $(cat "$TMP/out")"
[ -s "$TMP/s.png" ] || fail "installed ddpm sample wrote no image"
# get-data runs the installed script (an empty mirror: the script itself reports the failed download)
mkdir "$TMP/mirror"
DDPM_DATA_MIRROR="file://$TMP/mirror/" "$DDPM" get-data mnist "$TMP/data" >"$TMP/out" 2>&1
grep -q '^get-data: ' "$TMP/out" || fail "ddpm get-data did not run the installed script: $(cat "$TMP/out")"
"$DDPM" get-data mnsit >"$TMP/out" 2>&1
[ $? -eq 2 ] && grep -q "did you mean 'mnist'" "$TMP/out" || fail "ddpm get-data mnsit: $(cat "$TMP/out")"

# a program built against the installed library with pkg-config alone
if command -v pkg-config >/dev/null 2>&1 && [ -n "$pc" ]; then
    sed -n '/^   USAGE/,/^   CONVENTIONS/p' "$P/include/ddpm.h" | sed '1d;$d' | sed 's/^       //' >"$TMP/example.c"
    [ -s "$TMP/example.c" ] || fail "no example in the installed ddpm.h"
    flags=$(PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --cflags --libs ddpm) || fail "pkg-config --libs ddpm failed"
    case $flags in *cairo* | *png* | *jpeg* | *dnnl* | *openblas*) fail "pkg-config forces the library's dependencies: $flags" ;; esac
    if cc -std=c11 -o "$TMP/example" "$TMP/example.c" $flags 2>"$TMP/cc.err"; then
        LD_LIBRARY_PATH=$(dirname "$lib") "$TMP/example" || fail "the header's example, built with pkg-config, failed"
        # only ddpm_* is exported
        if command -v nm >/dev/null 2>&1; then
            other=$(nm -D --defined-only "$lib" | awk '$2 ~ /[TDB]/ { print $3 }' | grep -v '^ddpm_' | head -n 3)
            [ -z "$other" ] || fail "libddpm.so exports internal symbols: $other"
        fi
    else
        fail "the header's example does not compile with pkg-config's flags ($flags): $(cat "$TMP/cc.err")"
    fi
fi

if [ "$fails" -ne 0 ]; then
    echo "test_install: FAILED ($fails)" >&2
    exit 1
fi
echo "test_install: OK"
exit 0
