#!/bin/sh
# Renders the broker configuration and starts Mosquitto.
#
# Users come from the environment: MQTT_USERNAME / MQTT_PASSWORD (the kernel instances, required),
# MQTT_OBSERVER_PASSWORD and MQTT_MONITOR_PASSWORD (optional read-only users). A password file
# mounted as $MOSQUITTO_CONFIG_DIR/passwd is used as is instead. The TLS listener (tls.conf) is
# added when $MOSQUITTO_CERTS_DIR/server.crt exists; the websockets listener (websockets.conf) when
# MQTT_WS_PORT is set.
#
# Paths and ports default to the eclipse-mosquitto image layout and can be overridden (tests do):
# MOSQUITTO_CONFIG_DIR, MOSQUITTO_DATA_DIR, MOSQUITTO_CERTS_DIR, MQTT_PORT, MQTTS_PORT,
# MOSQUITTO_BIN, MOSQUITTO_PASSWD_BIN.
set -eu

config_dir=${MOSQUITTO_CONFIG_DIR:-/mosquitto/config}
data_dir=${MOSQUITTO_DATA_DIR:-/mosquitto/data}
certs_dir=${MOSQUITTO_CERTS_DIR:-/mosquitto/certs}
mqtt_port=${MQTT_PORT:-1883}
mqtts_port=${MQTTS_PORT:-8883}
mosquitto=${MOSQUITTO_BIN:-/usr/sbin/mosquitto}
mosquitto_passwd=${MOSQUITTO_PASSWD_BIN:-mosquitto_passwd}
kernel_user=${MQTT_USERNAME:-taylordash}

mkdir -p "$data_dir"
umask 077

if [ -f "$config_dir/passwd" ]; then
    cp "$config_dir/passwd" "$data_dir/passwd"
else
    : "${MQTT_PASSWORD:?set MQTT_PASSWORD (the kernel instances' broker password)}"
    rm -f "$data_dir/passwd"
    touch "$data_dir/passwd"
    "$mosquitto_passwd" -b "$data_dir/passwd" "$kernel_user" "$MQTT_PASSWORD"
    if [ -n "${MQTT_OBSERVER_PASSWORD:-}" ]; then
        "$mosquitto_passwd" -b "$data_dir/passwd" observer "$MQTT_OBSERVER_PASSWORD"
    fi
    if [ -n "${MQTT_MONITOR_PASSWORD:-}" ]; then
        "$mosquitto_passwd" -b "$data_dir/passwd" monitor "$MQTT_MONITOR_PASSWORD"
    fi
fi
sed "s/^user taylordash\$/user $kernel_user/" "$config_dir/acl" > "$data_dir/acl"

# Mosquitto reads certificates after dropping root, so it gets copies it owns (mounts may be read-only).
paths="s#/mosquitto/data/#$data_dir/#g; s#/mosquitto/certs/#$data_dir/certs/#g"
sed "$paths; s/^listener 1883\$/listener $mqtt_port/" "$config_dir/mosquitto.conf" > "$data_dir/mosquitto.conf"
if [ -f "$certs_dir/server.crt" ]; then
    mkdir -p "$data_dir/certs"
    cp "$certs_dir/ca.crt" "$certs_dir/server.crt" "$certs_dir/server.key" "$data_dir/certs/"
    sed "$paths; s/^listener 8883\$/listener $mqtts_port/" "$config_dir/tls.conf" >> "$data_dir/mosquitto.conf"
else
    echo "entrypoint: no $certs_dir/server.crt, so no TLS listener (see docs/events.md to create one)" >&2
fi
if [ -n "${MQTT_WS_PORT:-}" ]; then
    sed "s/^listener 9001\$/listener $MQTT_WS_PORT/" "$config_dir/websockets.conf" >> "$data_dir/mosquitto.conf"
fi

if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then
    chown -R mosquitto: "$data_dir"
fi
exec "$mosquitto" -c "$data_dir/mosquitto.conf"
