# shellcheck shell=sh
# Runs the script in $S (prepended by secretsync) as `sh -c "$S" sh PATH ARGS…`,
# through `sudo -n` when the first argument is 1. Arguments: sudo (0/1), path,
# then the script's own. `~/` paths are expanded by the login user's shell.
# shellcheck disable=SC2154,SC2088 # "~/" is matched literally, on purpose
s=$1; p=$2; shift 2
case $p in "~/"*) p="$HOME/${p#"~/"}";; esac
if [ "$s" = 1 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "sudo is not installed" >&2; exit 91; }
  sudo -n sh -c : 2>/dev/null || { echo "sudo -n needs a password" >&2; exit 92; }
  exec sudo -n sh -c "$S" sh "$p" "$@"
fi
exec sh -c "$S" sh "$p" "$@"
