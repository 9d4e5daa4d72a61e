#!/usr/bin/env bash
# Installs edgegw on a gateway in one command (README "Installing on a gateway"), from a built
# checkout (`npm ci && npm run build`):
#   sudo systemd/install.sh                  install or upgrade, enable and start the service
#   sudo systemd/install.sh --uninstall      remove the unit and the program; keep config, keys, queue
#   sudo systemd/install.sh --purge          also remove config, keys, the queue and the service user
#   systemd/install.sh --root DIR [...]      the same into DIR instead of / (image builds, tests)
#
# Idempotent: a second run changes nothing. The example config and the queue key are created only
# when absent, never overwritten. With --root, nothing touches the host: no systemctl, no useradd;
# the service user and groups are written as entries into DIR/etc/passwd, group (and shadow, when
# DIR has one), with free system ids of that tree, and files are owned by those numeric ids.
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=""
MODE=install
USER_NAME=edgegw
DEVICE_GROUPS=(dialout gpio)

usage() {
  echo "usage: $0 [--root DIR] [--uninstall | --purge]" >&2
  exit 64
}

while [ $# -gt 0 ]; do
  case "$1" in
    --root)
      [ $# -ge 2 ] || usage
      ROOT=$(mkdir -p "$2" && cd "$2" && pwd)
      shift 2
      ;;
    --uninstall) MODE=uninstall; shift ;;
    --purge) MODE=purge; shift ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done
[ "$ROOT" = "/" ] && ROOT=""

PROGRAM=$ROOT/opt/edgegw
CONF=$ROOT/etc/edgegw
STATE=$ROOT/var/lib/edgegw
# Queue keys a rotate-queue-key job writes (queue.rotatedKeysDir of the example config): apart
# from the queue they protect, writable by the service (the unit's ReadWritePaths= names it).
KEYS=$ROOT/var/lib/edgegw-keys
# The device certificate and key (uplink.cert and uplink.key of the example config): writable by
# the service, which replaces them in place when it rotates its certificate (ReadWritePaths=).
IDENTITY=$ROOT/var/lib/edgegw-identity
UNIT=$ROOT/etc/systemd/system/edgegw.service
WANTS=$ROOT/etc/systemd/system/multi-user.target.wants
LINK=$ROOT/usr/local/bin/edgegw
CHANGED=no
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
host() { [ -z "$ROOT" ]; }
say() { echo "edgegw install: $*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "edgegw install: run as root (sudo $0 …)" >&2
  exit 77
fi
if host && ! command -v systemctl >/dev/null 2>&1; then
  echo "edgegw install: no systemd here; use --root DIR to install into an image" >&2
  exit 69
fi

# --- users and groups -------------------------------------------------------------------------

# A free system id (999 downwards, like useradd --system) in DIR's passwd or group file.
free_id() {
  local file=$1 id
  for ((id = 999; id >= 100; id--)); do
    if ! cut -d: -f3 "$file" | grep -qx "$id"; then
      echo "$id"
      return
    fi
  done
  echo "edgegw install: no free system id in $file" >&2
  exit 73
}

ensure_group() {
  local name=$1
  if host; then
    getent group "$name" >/dev/null || { groupadd --system "$name"; say "group $name created"; }
    return
  fi
  mkdir -p "$ROOT/etc"
  touch "$ROOT/etc/group"
  grep -q "^$name:" "$ROOT/etc/group" || echo "$name:x:$(free_id "$ROOT/etc/group"):" >>"$ROOT/etc/group"
}

ensure_user() {
  ensure_group "$USER_NAME"
  for g in "${DEVICE_GROUPS[@]}"; do ensure_group "$g"; done
  if host; then
    if ! getent passwd "$USER_NAME" >/dev/null; then
      useradd --system --gid "$USER_NAME" --home-dir /var/lib/edgegw --no-create-home \
        --shell /usr/sbin/nologin --comment "edgegw gateway" "$USER_NAME"
      say "user $USER_NAME created"
    fi
    return
  fi
  touch "$ROOT/etc/passwd"
  if ! grep -q "^$USER_NAME:" "$ROOT/etc/passwd"; then
    local gid
    gid=$(grep "^$USER_NAME:" "$ROOT/etc/group" | cut -d: -f3)
    echo "$USER_NAME:x:$(free_id "$ROOT/etc/passwd"):$gid:edgegw gateway:/var/lib/edgegw:/usr/sbin/nologin" \
      >>"$ROOT/etc/passwd"
  fi
  if [ -f "$ROOT/etc/shadow" ] && ! grep -q "^$USER_NAME:" "$ROOT/etc/shadow"; then
    echo "$USER_NAME:!:::::::" >>"$ROOT/etc/shadow"
  fi
}

remove_user() {
  if host; then
    getent passwd "$USER_NAME" >/dev/null && userdel "$USER_NAME"
    getent group "$USER_NAME" >/dev/null && groupdel "$USER_NAME"
    return 0
  fi
  local f
  for f in passwd group shadow; do
    [ -f "$ROOT/etc/$f" ] && sed -i "/^$USER_NAME:/d" "$ROOT/etc/$f"
  done
  return 0
}

# Ids as chown takes them: names on the host, numeric ids from DIR's files with --root.
uid_of() {
  if host || [ "$1" = root ]; then echo "$1"; else grep "^$1:" "$ROOT/etc/passwd" | cut -d: -f3; fi
}
gid_of() {
  if host; then echo "$1"; else grep "^$1:" "$ROOT/etc/group" | cut -d: -f3; fi
}

# Creates (or corrects) a folder with its owner and mode.
folder() {
  mkdir -p "$1"
  chown "$2" "$1"
  chmod "$3" "$1"
}

# --- the program --------------------------------------------------------------------------------

# What goes to /opt/edgegw: the launcher, the compiled program (not its tests), production
# dependencies only, and the files it reads at run time.
program_files() {
  cd "$SRC"
  echo bin/edgegw.js
  echo package.json
  echo README.md
  find dist/src dist/bundle -type f -name '*.js' | sort
  find config hw-profiles systemd -type f | sort
}

production_modules() {
  cd "$SRC"
  if command -v npm >/dev/null 2>&1 && npm ls --omit=dev --parseable --all >/dev/null 2>&1; then
    npm ls --omit=dev --parseable --all 2>/dev/null | sed -n "s|^$SRC/||p" | grep '^node_modules/' | sort
  else
    echo node_modules # no npm: all of it (dev tools included), rather than a broken program
  fi
}

# One checksum over every file to install (names, modes and contents): equal means nothing to do.
source_digest() {
  local paths
  paths=$(
    program_files
    production_modules
  )
  cd "$SRC"
  printf '%s\n' "$paths" | xargs -d '\n' -I{} find -L {} -type f -printf '%p\t%m\n' | sort -u >"$WORK/files"
  {
    cat "$WORK/files"
    cut -f1 "$WORK/files" | xargs -d '\n' sha256sum
  } | sha256sum | cut -d' ' -f1
}

install_program() {
  [ -f "$SRC/dist/src/cli/main.js" ] || {
    echo "edgegw install: $SRC has no dist/; run \`npm ci && npm run build\` first" >&2
    exit 66
  }
  local digest
  digest=$(source_digest)
  if [ -f "$PROGRAM/.installed" ] && [ "$(cat "$PROGRAM/.installed")" = "$digest" ]; then
    say "program in /opt/edgegw is up to date"
    return
  fi
  local next=$PROGRAM.new
  rm -rf "$next"
  mkdir -p "$next"
  (
    cd "$SRC"
    program_files | while IFS= read -r f; do
      mkdir -p "$next/$(dirname "$f")"
      cp -L "$f" "$next/$f"
    done
    production_modules | while IFS= read -r m; do
      # A nested module came with its parent already.
      [ -e "$next/$m" ] && continue
      mkdir -p "$next/$(dirname "$m")"
      cp -RL "$m" "$next/$m"
    done
  )
  chown -R 0:0 "$next"
  chmod -R u=rwX,go=rX "$next"
  chmod 0755 "$next/bin/edgegw.js"
  echo "$digest" >"$next/.installed"
  rm -rf "$PROGRAM"
  mv "$next" "$PROGRAM"
  CHANGED=yes
  say "program installed in /opt/edgegw"
}

# --- install / uninstall --------------------------------------------------------------------------

do_install() {
  ensure_user
  local svc root_svc
  svc="$(uid_of "$USER_NAME"):$(gid_of "$USER_NAME")"
  root_svc="$(uid_of root):$(gid_of "$USER_NAME")"

  mkdir -p "$ROOT/opt"
  install_program
  mkdir -p "$ROOT/usr/local/bin"
  [ "$(readlink "$LINK" 2>/dev/null)" = /opt/edgegw/bin/edgegw.js ] || ln -sfn /opt/edgegw/bin/edgegw.js "$LINK"

  # Config readable by the service, written by root; key files owned by the service, 0600.
  folder "$CONF" "$root_svc" 0750
  folder "$CONF/tls" "$root_svc" 0750
  if [ ! -e "$CONF/site.yaml" ]; then
    install -m 0640 "$SRC/config/example.yaml" "$CONF/site.yaml"
    chown "$root_svc" "$CONF/site.yaml"
    say "example config written to /etc/edgegw/site.yaml: edit it for this site"
  fi
  # A site.yaml from before /var/lib/edgegw-identity keeps the device identity under /etc/edgegw
  # (a relative path resolves there too), which the service cannot write: a certificate rotation
  # there fails. The file is never edited here; say how to move it.
  if grep -Eq "^[[:space:]]+(cert|key):[[:space:]]*[\"']?([^/\"'[:space:]]|/etc/)" "$CONF/site.yaml"; then
    say "note: site.yaml keeps uplink.cert/uplink.key under /etc/edgegw, read-only to the service, so a certificate rotation cannot replace them: move both files to /var/lib/edgegw-identity/ (chown $USER_NAME:, chmod 600 the key) and point uplink.cert and uplink.key there"
  fi
  if [ ! -e "$CONF/tls/queue.key" ]; then
    node "$PROGRAM/bin/edgegw.js" keygen "$CONF/tls/queue.key" >/dev/null
    say "queue key created: /etc/edgegw/tls/queue.key (back it up: without it the queue cannot be read)"
  fi
  chown "$svc" "$CONF/tls/queue.key"
  chmod 0600 "$CONF/tls/queue.key"
  # The sealed queue (systemd's StateDirectory= would create it too, with the same mode).
  folder "$STATE" "$svc" 0700
  folder "$KEYS" "$svc" 0700
  folder "$IDENTITY" "$svc" 0700

  mkdir -p "$(dirname "$UNIT")"
  if ! cmp -s "$SRC/systemd/edgegw.service" "$UNIT"; then
    install -m 0644 "$SRC/systemd/edgegw.service" "$UNIT"
    CHANGED=yes
    say "unit installed: /etc/systemd/system/edgegw.service"
  fi

  if host; then
    [ "$CHANGED" = yes ] && systemctl daemon-reload
    systemctl enable --quiet edgegw
    # Started only once the config checks: with the example's placeholders it would exit 78.
    if node "$PROGRAM/bin/edgegw.js" check-config -c "$CONF/site.yaml" >/dev/null 2>&1; then
      if [ "$CHANGED" = yes ]; then systemctl restart edgegw; else systemctl start edgegw; fi
      say "edgegw is enabled and running (systemctl status edgegw)"
    else
      say "edgegw is enabled but not started: /etc/edgegw/site.yaml does not check yet"
    fi
  else
    # What `systemctl enable` would do, without systemctl: the image boots with it enabled.
    mkdir -p "$WANTS"
    [ "$(readlink "$WANTS/edgegw.service" 2>/dev/null)" = /etc/systemd/system/edgegw.service ] ||
      ln -sfn /etc/systemd/system/edgegw.service "$WANTS/edgegw.service"
    say "installed into $ROOT and enabled (no systemctl calls with --root)"
  fi
  cat <<EOF

Next steps:
  1. Put AmazonRootCA1.pem in /etc/edgegw/tls/, and the device certificate and key in
     /var/lib/edgegw-identity/ (device.pem.crt, device.private.key), then:
       chown $USER_NAME: /var/lib/edgegw-identity/device.* && chmod 600 /var/lib/edgegw-identity/device.private.key
     or have them made by fleet provisioning with a claim certificate (README "Device identity"):
       sudo edgegw provision --claim-cert FILE --claim-key FILE --template NAME
  2. Edit /etc/edgegw/site.yaml (gateway.id, uplink.url, sensors) and check it:  edgegw check-config
  3. Check the whole setup (keys, certificate, clock, disk, serial ports, GPIO, broker):  edgegw doctor
  4. Start or restart:  systemctl restart edgegw   then   edgegw status   or   systemctl status edgegw
  Technicians: add yourself to group $USER_NAME for edgegw status (usermod -aG $USER_NAME <user>).
EOF
}

do_uninstall() {
  if host; then systemctl disable --now --quiet edgegw.service 2>/dev/null || true; fi
  rm -f "$UNIT" "$LINK" "$WANTS/edgegw.service"
  rm -rf "$PROGRAM" "$PROGRAM.new"
  host && systemctl daemon-reload
  say "unit and program removed"
  if [ "$MODE" = purge ]; then
    rm -rf "$CONF" "$STATE" "$KEYS" "$IDENTITY"
    remove_user
    say "config, keys, the queue (readings not yet delivered are gone) and user $USER_NAME removed"
  else
    say "kept: /etc/edgegw (config and keys), /var/lib/edgegw (the queue), /var/lib/edgegw-keys (rotated queue keys) and /var/lib/edgegw-identity (device certificate and key); --purge removes them"
  fi
}

case "$MODE" in
  install) do_install ;;
  uninstall | purge) do_uninstall ;;
esac
