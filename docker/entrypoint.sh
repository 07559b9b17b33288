#!/bin/sh
# Container entrypoint: become PUID:PGID with UMASK, the way NAS users expect, then exec the CMD.
#
#   PUID   user id that owns the outputs     (Synology 1026, Unraid 99, TrueNAS 568; default 1000)
#   PGID   group id                           (Synology 100,  Unraid 100, TrueNAS 568; default 1000)
#   UMASK  octal umask for created files      (default 002: group-writable outputs)
#
# Started as root (the image default), it moves the image's "watchd" user to PUID/PGID (reusing
# a group that already has PGID, e.g. "users" = 100), chowns the state directory only (never
# the drop folders: they belong to the NAS user already), sets the umask, and drops to that
# user with setpriv (util-linux, part of the Debian base image), setting no_new_privs so no
# setuid binary can lift it back (as NoNewPrivileges= does in the systemd unit). Started as
# non-root (`docker run --user`), it cannot switch and simply runs the command as that user.
# `exec` at the end: the daemon replaces this shell as PID 1 and receives SIGTERM itself.
#
# Test hooks (no root needed): ENTRYPOINT_DRY_RUN=1 prints "+ command" for every change instead
# of making it, then runs the command without switching user; ENTRYPOINT_PASSWD and
# ENTRYPOINT_GROUP point at stand-in passwd/group files; ENTRYPOINT_UID pretends a current uid.
set -eu

APP_USER="watchd"
PASSWD_FILE="${ENTRYPOINT_PASSWD:-/etc/passwd}"
GROUP_FILE="${ENTRYPOINT_GROUP:-/etc/group}"
DRY_RUN="${ENTRYPOINT_DRY_RUN:-0}"
STATE_DIR="${STATE_DIRECTORY:-/data}"

die() {
    echo "entrypoint: error: $*" >&2
    exit 64
}

note() {
    echo "entrypoint: $*" >&2
}

run() {
    if [ "$DRY_RUN" = "1" ]; then
        echo "+ $*"
    else
        "$@"
    fi
}

# A decimal id from 1 to 4294967294: no sign, no leading zero, not root.
check_id() {
    name=$1
    value=$2
    case $value in
        0) die "$name=0 would run the daemon as root; use the id of the NAS user or group" ;;
        "" | *[!0-9]* | 0*)
            die "$name must be a number from 1 to 4294967294 (got '$value'); for example" \
                "PUID=1026 PGID=100 on Synology, PUID=99 PGID=100 on Unraid, 568:568 on TrueNAS"
            ;;
    esac
    if [ ${#value} -gt 10 ] || [ "$value" -gt 4294967294 ]; then
        die "$name is too large (got '$value'); user and group ids stop at 4294967294"
    fi
}

# Name of the entry with this numeric id in a passwd/group style file (empty when none).
name_for_id() {
    awk -F: -v id="$2" '$3 == id { print $1; exit }' "$1"
}

# Numeric id of a named entry in a passwd/group style file (empty when none).
id_for_name() {
    awk -F: -v name="$2" '$1 == name { print $3; exit }' "$1"
}

PUID="${PUID:-1000}"
PGID="${PGID:-1000}"
UMASK="${UMASK:-002}"
check_id PUID "$PUID"
check_id PGID "$PGID"
case $UMASK in
    [0-7][0-7][0-7] | [0-7][0-7][0-7][0-7]) ;;
    *) die "UMASK must be 3 or 4 octal digits such as 002 or 022 (got '$UMASK')" ;;
esac
case $STATE_DIR in
    /?*) ;;
    *) die "STATE_DIRECTORY must be an absolute path other than / (got '$STATE_DIR')" ;;
esac

umask "$UMASK"

current_uid=$(id -u)
if [ "$DRY_RUN" = "1" ] && [ -n "${ENTRYPOINT_UID:-}" ]; then
    current_uid=$ENTRYPOINT_UID
fi

if [ "$current_uid" != "0" ]; then
    # Already unprivileged (docker run --user, rootless setups): nothing to switch.
    if [ "$current_uid" != "$PUID" ]; then
        note "running as uid $current_uid (set by the container runtime); PUID=$PUID ignored"
    fi
    if [ "$DRY_RUN" = "1" ]; then
        echo "+ umask $UMASK"
    fi
    exec "$@"
fi

# The group: reuse whichever group already has PGID, else give the app's own group that id.
group_name=$(name_for_id "$GROUP_FILE" "$PGID")
if [ -z "$group_name" ]; then
    if [ -n "$(id_for_name "$GROUP_FILE" "$APP_USER")" ]; then
        run groupmod --gid "$PGID" "$APP_USER"
    else
        run groupadd --gid "$PGID" "$APP_USER"
    fi
    group_name=$APP_USER
fi

# The user: reuse an existing account with PUID (never modified), else move the app user there.
user_name=$(name_for_id "$PASSWD_FILE" "$PUID")
if [ -z "$user_name" ]; then
    if [ -n "$(id_for_name "$PASSWD_FILE" "$APP_USER")" ]; then
        run usermod --uid "$PUID" --gid "$PGID" "$APP_USER"
    else
        run useradd --uid "$PUID" --gid "$PGID" --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$APP_USER"
    fi
    user_name=$APP_USER
elif [ "$user_name" = "$APP_USER" ]; then
    app_gid=$(awk -F: -v name="$APP_USER" '$1 == name { print $4; exit }' "$PASSWD_FILE")
    if [ "$app_gid" != "$PGID" ]; then
        run usermod --gid "$PGID" "$APP_USER"
    fi
fi

# Only the ledger's directory changes owner; the drop folders are the NAS user's own.
run mkdir -p "$STATE_DIR"
run chown -R "$PUID:$PGID" "$STATE_DIR"

# setpriv does not touch the environment: give the daemon a home it can write.
export HOME="$STATE_DIR"
note "running as $user_name ($PUID) group $group_name ($PGID) with umask $UMASK"
if [ "$DRY_RUN" = "1" ]; then
    echo "+ umask $UMASK"
    echo "+ setpriv --reuid=$PUID --regid=$PGID --init-groups --no-new-privs -- $*"
    exec "$@"
fi
exec setpriv --reuid="$PUID" --regid="$PGID" --init-groups --no-new-privs -- "$@"
