#!/usr/bin/env bash
# Set everything up, idempotently: a virtual environment in .venv with the CPU build of torch, the package
# (with its dev tools when called as `setup.sh dev`), and Fashion-MNIST. A second run reuses all of it.
# Meant to be sourced or called by scripts/run.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

extras="${1:-}"
python="${PYTHON:-python3}"
venv=.venv
torch_version=2.13.0

say() { printf 'setup: %s\n' "$*" >&2; }

as_root() {  # run a command as root: directly, or through sudo when it asks for no password
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
    else return 1
    fi
}

# 1. Python 3.11+ and a virtual environment (Debian ships venv separately as python3-venv).
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { say "Python 3.11 or newer is needed; $python is $("$python" --version 2>&1)"; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        say "python venv is missing; installing python3-venv with apt"
        as_root apt-get install -y python3-venv >/dev/null 2>&1 \
            || { as_root apt-get update >/dev/null && as_root apt-get install -y python3-venv >/dev/null; } \
            || { say "cannot create a virtual environment: install python3-venv and run again"; exit 1; }
        "$python" -m venv "$venv"
    fi
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)

# 2. The CPU build of torch first, so that pip never resolves torch to a multi-GB CUDA build.
if ! "$venv/bin/python" -c "import importlib.metadata as m, sys; \
        sys.exit(not m.version('torch').startswith('$torch_version'))" 2>/dev/null; then
    say "installing torch==$torch_version (CPU build)"
    "${pip[@]}" install "torch==$torch_version" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi

# 3. The package itself, editable, reinstalled only when pyproject.toml or the extras change.
stamp="$venv/.linear-nets-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing linear-nets${extras:+ [$extras]}"
    "${pip[@]}" install -e ".${extras:+[$extras]}"
    echo "$want" > "$stamp"
fi

# 4. Fashion-MNIST: found where the package looks, or installed from Debian's dataset-fashion-mnist.
if ! "$venv/bin/linear-nets" data path >/dev/null 2>&1; then
    say "Fashion-MNIST not found; installing Debian's dataset-fashion-mnist"
    if command -v apt-get >/dev/null && as_root true; then
        as_root apt-get install -y dataset-fashion-mnist >/dev/null 2>&1 \
            || { as_root apt-get update >/dev/null && as_root apt-get install -y dataset-fashion-mnist >/dev/null; }
    fi
    if ! "$venv/bin/linear-nets" data path >/dev/null; then
        say "could not install it here (no apt-get, or not root and no password-less sudo)."
        say "Get it one of these ways, then run this command again:"
        say "  - sudo apt-get install dataset-fashion-mnist"
        say "  - LINEAR_NETS_DATA=/dir/with/the/four/idx/files (gzipped or not)"
        say "  - $venv/bin/linear-nets data download   (needs internet)"
        exit 1
    fi
fi
# 5. Tests only: Debian's chromium, in which tests/test_report.py opens the HTML report (headless, offline).
if [[ "$extras" == *dev* ]] && ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    say "chromium not found; installing Debian's chromium (the report is tested in a real browser)"
    if command -v apt-get >/dev/null && as_root true; then
        as_root apt-get install -y chromium >/dev/null 2>&1 \
            || { as_root apt-get update >/dev/null && as_root apt-get install -y chromium >/dev/null; } \
            || say "could not install chromium: the browser test will fail in CI (install it: apt-get install chromium)"
    else
        say "no apt-get, or not root and no password-less sudo: install chromium to run the browser test"
    fi
fi
say "ready: $("$venv/bin/linear-nets" data path)"
