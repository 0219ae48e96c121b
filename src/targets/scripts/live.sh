# shellcheck shell=sh
# What runs from an env file (#28), for src/targets/live_unit.rs.
# Arguments: systemctl, docker (programs), path, unit, container (empty:
# none). Prints, for a unit, `#unit CODE` and what `systemctl show` said;
# then `#environ ok` and the main process's environment in base64, or
# `#environ denied`; then `#mtime SECONDS` of the file (or `none`). For a
# container, `#container ok` and `docker inspect`'s answer in base64, or
# `#container fail` and the first line docker printed on stderr. Names come
# after `--`; no value is ever on a command line.
systemctl=$1 docker=$2 path=$3 unit=$4 container=$5
# shellcheck disable=SC2088 # "~/" is matched literally, on purpose
case $path in "~/"*) path="$HOME/${path#"~/"}" ;; esac
if [ -n "$unit" ]; then
  show=$(TZ=UTC LC_ALL=C "$systemctl" show -p MainPID -p ExecMainStartTimestamp -p LoadState -- "$unit" 2>/dev/null)
  echo "#unit $?"
  printf '%s\n' "$show" | sed 's/^#/ #/'
  pid=$(printf '%s\n' "$show" | sed -n 's/^MainPID=//p')
  case $pid in ''|0|*[!0-9]*) ;; *)
    if cat "/proc/$pid/environ" > /dev/null 2>&1; then
      echo "#environ ok"
      base64 < "/proc/$pid/environ"
    else
      echo "#environ denied"
    fi ;;
  esac
  m=$(stat -c %Y -- "$path" 2>/dev/null || stat -f %m -- "$path" 2>/dev/null)
  echo "#mtime ${m:-none}"
fi
if [ -n "$container" ]; then
  if env=$(LC_ALL=C "$docker" inspect --format '{{json .Config.Env}}' -- "$container" 2>/dev/null); then
    echo "#container ok"
    printf '%s' "$env" | base64
  else
    echo "#container fail"
    LC_ALL=C "$docker" inspect --format '{{json .Config.Env}}' -- "$container" 2>&1 > /dev/null | sed -n 1p | sed 's/^#/ #/'
  fi
fi
echo "#end"
