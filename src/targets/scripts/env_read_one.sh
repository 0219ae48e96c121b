# shellcheck shell=sh
# One file of env_read.sh: prints its state (dir, ok, unreadable, dangling,
# missing; special: not a regular file; large: over 16 MiB; untrusted: a
# link owned by someone else than us, root or the file's owner) and, when
# ok, its bytes in base64. A FIFO or device is never opened.
p=$1
# shellcheck disable=SC2012 # ls -ln is the POSIX way to read an owner and a size
if [ -d "$p" ]; then echo dir
elif [ -e "$p" ]; then
  if [ -L "$p" ] && lo=$(ls -ldn -- "$p" | awk '{print $3}') \
      && [ "$lo" != "$(id -u)" ] && [ "$lo" != 0 ] \
      && [ "$lo" != "$(ls -ldnL -- "$p" | awk '{print $3}')" ]; then echo untrusted
  elif [ ! -f "$p" ]; then echo special
  elif [ "$(ls -ldnL -- "$p" | awk '{print $5}')" -gt 16777216 ]; then echo large
  elif [ -r "$p" ]; then echo ok; base64 < "$p" || echo "#fail"; else echo unreadable; fi
elif [ -L "$p" ]; then echo dangling
else echo missing; fi
