# shellcheck shell=sh
# Reads env files for secretsync (the `ssh_env` target), one command per host.
# Arguments: (sudo, path) pairs. For each, prints a header `#<i> <state>`;
# for a readable file, its bytes in base64 after the `ok`. `~/` paths are
# expanded by the login user's shell, before any `sudo`.
# $R (prepended by secretsync) is env_read_one.sh: the read of one file,
# run as the user or through `sudo -n`.
# shellcheck disable=SC2154,SC2088 # "~/" is matched literally, on purpose
i=0
while [ $# -ge 2 ]; do
  s=$1; p=$2; shift 2
  case $p in "~/"*) p="$HOME/${p#"~/"}";; esac
  printf '#%s ' "$i"
  if [ "$s" = 1 ]; then
    if ! command -v sudo >/dev/null 2>&1; then echo nosudo
    elif ! sudo -n sh -c : 2>/dev/null; then echo sudorefused
    else sudo -n sh -c "$R" sh "$p"; fi
  else sh -c "$R" sh "$p"; fi
  i=$((i+1))
done
