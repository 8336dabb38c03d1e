#!/usr/bin/env bash
# Set up a checkout on a fresh Debian 12 machine: system packages, then a virtualenv
# (.venv) with the project installed in editable mode and its test dependencies.
# Idempotent and quick when nothing changed. Needs root (or sudo) only to install
# missing Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: Python with venv and pip; the eBPF toolchain that builds the collector's
# object (clang, llvm-strip, libbpf headers, bpftool for vmlinux.h and the reduced BTF);
# libbpf1, which loads it at run time; gcc for the test programs that race the tracer and,
# with python3-dev, for the C encoder of `tracee -o json` (collector/_fastjson.c, optional);
# pahole (dwarves) for builds from kernel headers (KERN_HEADERS), with Debian's kernel
# headers and lz4 (to unpack that kernel's image) for the test that checks them; Docker (a daemon the
# container-identity tests start on their own socket) and a static busybox for their image;
# openssl makes the certificates of the NATS TLS test.
APT_PACKAGES=(python3 python3-venv python3-pip python3-dev make gcc libc6-dev clang llvm libbpf-dev libbpf1 libelf-dev
              bpftool dwarves lz4 linux-headers-cloud-amd64 docker.io busybox-static openssl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# A python3 that can already make virtualenvs (e.g. a pyenv build) needs no Debian Python.
if command -v python3 >/dev/null && python3 -c 'import venv, ensurepip' 2>/dev/null; then
    filtered=()
    for pkg in "${missing[@]}"; do
        case "$pkg" in python3|python3-venv|python3-pip) ;; *) filtered+=("$pkg") ;; esac
    done
    missing=("${filtered[@]}")
fi
if ((${#missing[@]})); then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The virtualenv, reinstalled when pyproject.toml, setup.py, the C extensions, the engine's
# compiled modules (engine/compiled.py lists them) or this script changes.
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.pytracee-installed
compiled=$(sed -n '/^MODULES: Final = (/,/^)/s/^ *"\(.*\.py\)",$/\1/p' engine/compiled.py)
want=$(cat pyproject.toml setup.py collector/_fastjson.c engine/_recscan.c engine/_recscan_*.h engine/compiled.py $compiled scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup: installing pytracee and its test dependencies into .venv" >&2
    log=.venv/pip-install.log
    if ! { .venv/bin/python -m pip install --upgrade pip 'setuptools>=77' wheel && .venv/bin/python -m pip install -e '.[test]' \
        && .venv/bin/python -m pip install --ignore-requires-python 'opa-golib-python-bindings==0.4.4'; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "setup: pip install failed (log above, also in $log)" >&2
        exit 1
    fi
    echo "$want" > "$stamp"
fi

# The collector's eBPF object (bpf/tracee.bpf.o) and its reduced BTF (bpf/tracee.min.btf, for
# kernels of the same layout without BTF), rebuilt when the sources change.
make -s -C bpf >/dev/null
make -s -C bpf min-btf >/dev/null
