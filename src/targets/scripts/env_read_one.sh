# shellcheck shell=sh
# One file of env_read.sh: prints its state (dir, ok, unreadable, dangling,
# missing) and, when ok, its bytes in base64.
p=$1
if [ -d "$p" ]; then echo dir
elif [ -e "$p" ]; then
  if [ -r "$p" ]; then echo ok; base64 < "$p" || echo "#fail"; else echo unreadable; fi
elif [ -L "$p" ]; then echo dangling
else echo missing; fi
