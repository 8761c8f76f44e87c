# Shared set-up of scripts/run and scripts/test (sourced, not run): make sure .venv exists
# and holds this version of the project; install Debian packages as root when missing.
# VORONKA_EXTRAS names the pyproject extras to install (scripts/test: dev).
PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.voronka-installed   # sha256 of the pyproject.toml (+ extras) last installed

say() { printf '==> %s\n' "$*"; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

apt_updated=
apt_install() {  # apt_install PACKAGE... (root only; otherwise say what to install)
  if [ "$(id -u)" -ne 0 ]; then
    die "missing $*; install it with: sudo apt-get install -y $*"
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing $* and there is no apt-get: install it by hand"
  if [ -z "$apt_updated" ]; then
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

# --- environment ------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (Python 3.11+ is needed)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$("$PYTHON" --version 2>&1) is too old: Python 3.11+ is needed (set PYTHON=...)"

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
    rm -rf "$VENV"
    apt_install python3-venv   # Debian splits venv/ensurepip out of python3
    "$PYTHON" -m venv "$VENV" || die "could not create $VENV"
  fi
fi

want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${VORONKA_EXTRAS:-}"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "installing Voronka into $VENV (pyproject.toml changed)"
  PIP_ROOT_USER_ACTION=ignore "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -e ".${VORONKA_EXTRAS:+[$VORONKA_EXTRAS]}" >"$VENV/pip.log" 2>&1 \
    || { cat "$VENV/pip.log" >&2; die "pip install failed (log above, also in $VENV/pip.log)"; }
  echo "$want" >"$STAMP"
fi

