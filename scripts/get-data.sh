#!/bin/sh
# get-data.sh — download MNIST, Fashion-MNIST or CIFAR-10 (binary version) into the folder where ddpm
# looks for it, and verify every file's MD5 checksum. A file whose checksum fails is deleted, never kept.
#
# Usage: scripts/get-data.sh mnist|fashion-mnist|cifar10|all [DIR]
#   DIR defaults to $DDPM_DATA/<kind>, else $HOME/.cache/ddpm/<kind> (ddpm's default data folder).
#   DDPM_DATA_MIRROR=URL replaces the list of download sites by one base URL (ending in /), for example a
#   local copy: DDPM_DATA_MIRROR=file:///srv/datasets/mnist/ (needs curl for file:// URLs).
set -eu

usage() {
    echo "usage: scripts/get-data.sh mnist|fashion-mnist|cifar10|all [DIR]" >&2
    echo "  DIR defaults to \$DDPM_DATA/<kind>, else \$HOME/.cache/ddpm/<kind>" >&2
    exit 2
}

die() {
    echo "get-data: $*" >&2
    exit 1
}

# Checksums of the original distribution files.
MNIST_FILES="
f68b3c2dcbeaaa9fbdd348bbdeb94873 train-images-idx3-ubyte.gz
d53e105ee54ea40749a09fcbcd1e9432 train-labels-idx1-ubyte.gz
9fb629c4189551a2d022fa330f9573f3 t10k-images-idx3-ubyte.gz
ec29112dd5afa0611ce80d1b7f02629c t10k-labels-idx1-ubyte.gz"
MNIST_MIRRORS="https://ossci-datasets.s3.amazonaws.com/mnist/
https://storage.googleapis.com/cvdf-datasets/mnist/
http://yann.lecun.com/exdb/mnist/"

FASHION_FILES="
8d4fb7e6c68d591d4c3dfef9ec88bf0d train-images-idx3-ubyte.gz
25c81989df183df01b3e8a0aad5dffbe train-labels-idx1-ubyte.gz
bef4ecab320f06d8554ea6380940ec79 t10k-images-idx3-ubyte.gz
bb300cfdad3c16e7a12a480ee83cd310 t10k-labels-idx1-ubyte.gz"
FASHION_MIRRORS="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/
https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

CIFAR_FILES="
c32a1d4ab5d03f1284b67883e8d87530 cifar-10-binary.tar.gz"
CIFAR_MIRRORS="https://www.cs.toronto.edu/~kriz/"
CIFAR_BATCH_BYTES=30730000   # 10000 records of 1 + 3072 bytes

if command -v curl >/dev/null 2>&1; then
    FETCH=curl
elif command -v wget >/dev/null 2>&1; then
    FETCH=wget
else
    die "needs curl or wget to download"
fi

md5_of() {
    if command -v md5sum >/dev/null 2>&1; then
        md5sum "$1" | cut -d' ' -f1
    elif command -v md5 >/dev/null 2>&1; then
        md5 -q "$1"
    else
        openssl md5 -r "$1" | cut -d' ' -f1
    fi
}

fetch() {   # fetch URL FILE
    if [ "$FETCH" = curl ]; then
        curl -fsSL --retry 3 --connect-timeout 30 -o "$2" "$1"
    else
        wget -q --tries=3 --timeout=30 -O "$2" "$1"
    fi
}

# get FOLDER MD5 NAME MIRRORS: FOLDER/NAME with the given checksum, downloaded unless already there.
get() {
    dir=$1 sum=$2 name=$3 mirrors=$4
    dest="$dir/$name"
    if [ -f "$dest" ]; then
        if [ "$(md5_of "$dest")" = "$sum" ]; then
            echo "get-data: $dest is already there (md5 ok)"
            return 0
        fi
        echo "get-data: $dest has the wrong checksum; downloading it again"
        rm -f "$dest"
    fi
    part="$dest.part"
    for base in $mirrors; do
        echo "get-data: downloading $base$name"
        rm -f "$part"
        if ! fetch "$base$name" "$part"; then
            echo "get-data:   failed; trying the next site" >&2
            continue
        fi
        got=$(md5_of "$part")
        if [ "$got" = "$sum" ]; then
            mv "$part" "$dest"
            echo "get-data: $dest (md5 $sum ok)"
            return 0
        fi
        echo "get-data:   md5 $got, expected $sum; deleted" >&2
    done
    rm -f "$part"
    die "could not get $name with md5 $sum from: $(echo "$mirrors" | tr '\n' ' ')"
}

get_idx() {   # get_idx KIND DIR FILES MIRRORS
    kind=$1 dir=$2 files=$3 mirrors=${DDPM_DATA_MIRROR:-$4}
    mkdir -p "$dir"
    echo "$files" | while read -r sum name; do
        [ -n "$sum" ] || continue
        get "$dir" "$sum" "$name" "$mirrors"
    done
    echo "get-data: $kind is in $dir (use --data $kind --data-dir $dir, or set DDPM_DATA)"
}

get_cifar() {   # get_cifar DIR
    dir=$1 mirrors=${DDPM_DATA_MIRROR:-$CIFAR_MIRRORS}
    mkdir -p "$dir"
    have=1
    for b in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        f="$dir/$b.bin"
        if [ ! -f "$f" ] || [ "$(wc -c < "$f" | tr -d ' ')" != "$CIFAR_BATCH_BYTES" ]; then have=0; fi
    done
    if [ "$have" = 1 ]; then
        echo "get-data: the six CIFAR-10 batches are already in $dir"
        return 0
    fi
    sum=$(echo "$CIFAR_FILES" | sed -n 's/^\([0-9a-f]*\) .*/\1/p')
    get "$dir" "$sum" cifar-10-binary.tar.gz "$mirrors"
    tmp="$dir/.extract.$$"
    rm -rf "$tmp"
    mkdir "$tmp"
    if ! tar -xzf "$dir/cifar-10-binary.tar.gz" -C "$tmp"; then
        rm -rf "$tmp"
        die "cannot extract $dir/cifar-10-binary.tar.gz"
    fi
    for b in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do
        f="$tmp/cifar-10-batches-bin/$b.bin"
        if [ ! -f "$f" ] || [ "$(wc -c < "$f" | tr -d ' ')" != "$CIFAR_BATCH_BYTES" ]; then
            rm -rf "$tmp"
            die "the archive lacks $b.bin of $CIFAR_BATCH_BYTES bytes"
        fi
    done
    mv "$tmp"/cifar-10-batches-bin/*.bin "$dir"/
    if [ -f "$tmp/cifar-10-batches-bin/batches.meta.txt" ]; then
        mv "$tmp/cifar-10-batches-bin/batches.meta.txt" "$dir"/
    fi
    rm -rf "$tmp"
    rm -f "$dir/cifar-10-binary.tar.gz"
    echo "get-data: extracted data_batch_1..5.bin and test_batch.bin into $dir (archive deleted)"
    echo "get-data: cifar10 is in $dir (use --data cifar10 --data-dir $dir, or set DDPM_DATA)"
}

default_dir() {   # default_dir KIND
    if [ -n "${DDPM_DATA:-}" ]; then
        echo "$DDPM_DATA/$1"
    elif [ -n "${HOME:-}" ]; then
        echo "$HOME/.cache/ddpm/$1"
    else
        die "set DDPM_DATA or HOME, or give DIR"
    fi
}

one() {   # one KIND [DIR]
    dir=${2:-$(default_dir "$1")}
    case $1 in
    mnist) get_idx mnist "$dir" "$MNIST_FILES" "$MNIST_MIRRORS" ;;
    fashion-mnist) get_idx fashion-mnist "$dir" "$FASHION_FILES" "$FASHION_MIRRORS" ;;
    cifar10) get_cifar "$dir" ;;
    *) usage ;;
    esac
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    usage
fi
case $1 in
all)
    [ $# -eq 1 ] || die "'all' takes no DIR (each set goes to its default folder; set DDPM_DATA to move them)"
    [ -z "${DDPM_DATA_MIRROR:-}" ] || die "'all' cannot use DDPM_DATA_MIRROR (one mirror per data set)"
    one mnist
    one fashion-mnist
    one cifar10
    ;;
-h | --help) usage ;;
*) one "$@" ;;
esac
