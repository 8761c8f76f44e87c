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

# requirements.lock pins every dependency (pip constraints): the same versions on every
# install. Refresh it with scripts/lock after changing dependencies in pyproject.toml.
LOCK=requirements.lock
want="$(cat pyproject.toml "$LOCK" 2>/dev/null | sha256sum | cut -d' ' -f1) ${VORONKA_EXTRAS:-}"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  say "installing Voronka into $VENV (pyproject.toml or $LOCK changed)"
  [ -f "$LOCK" ] || die "$LOCK is missing (scripts/lock makes it)"
  PIP_ROOT_USER_ACTION=ignore "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
    -c "$LOCK" -e ".${VORONKA_EXTRAS:+[$VORONKA_EXTRAS]}" >"$VENV/pip.log" 2>&1 \
    || { cat "$VENV/pip.log" >&2; die "pip install failed (log above, also in $VENV/pip.log)"; }
  echo "$want" >"$STAMP"
fi

# The installed versions, as one hash (CI logs show it: equal hashes, equal environments),
# and whether they are the locked ones.
freeze_report() {
  local frozen locked
  frozen=$("$VENV/bin/python" -m pip freeze --all --exclude-editable --exclude pip \
    --exclude setuptools --disable-pip-version-check 2>/dev/null | sort -f)
  locked=$(grep -v '^#' "$LOCK" | grep . | sort -f)
  say "pip freeze sha256: $(printf '%s\n' "$frozen" | sha256sum | cut -c1-16)" \
    "(requirements.lock: $(printf '%s\n' "$locked" | sha256sum | cut -c1-16))"
  if [ "$frozen" != "$locked" ]; then
    printf '%s: the installed versions differ from %s (refresh it with scripts/lock):\n' \
      "$(basename "$0")" "$LOCK" >&2
    diff <(printf '%s\n' "$locked") <(printf '%s\n' "$frozen") | grep '^[<>]' >&2
  fi
}

