#!/usr/bin/env bash
# Installs sos-agent as a systemd service on Raspberry Pi OS (64-bit) or another Debian-like Linux.
#
#   sudo ./install.sh                      install or upgrade (safe to run again)
#   sudo ./install.sh --uninstall          remove the program and the service; keep config and outbox
#   sudo ./install.sh --uninstall --purge  remove everything, queued alerts included
#
# Options:
#   --from DIR        where sos-agent-linux-arm64 / sos-agent-linux-x64 are (default: beside this script,
#                     then ../dist); --binary FILE names the executable directly
#   --example FILE    the configuration template (default: beside this script, then ../config)
#   --root DIR        install under DIR instead of / (a staging tree: no user, no chown, no systemctl)
#   --prefix DIR      where bin/sos-agent goes (default /usr/local)
#   --start           start (or restart) the service now; by default it is only enabled, so that it
#                     first runs with an edited configuration
#   --button-gpio N, --led-gpio N, --buzzer-gpio N
#                     BCM numbers used in the printed wiring and config.txt lines (17, 27, 22)
set -euo pipefail

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "$*"; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root=""
prefix="/usr/local"
from=""
binary=""
example=""
uninstall=0
purge=0
start=0
button_gpio=17
led_gpio=27
buzzer_gpio=22

need_value() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --root) need_value "$@"; root="${2%/}"; shift 2 ;;
    --prefix) need_value "$@"; prefix="${2%/}"; shift 2 ;;
    --from) need_value "$@"; from="$2"; shift 2 ;;
    --binary) need_value "$@"; binary="$2"; shift 2 ;;
    --example) need_value "$@"; example="$2"; shift 2 ;;
    --uninstall) uninstall=1; shift ;;
    --purge) purge=1; shift ;;
    --start) start=1; shift ;;
    --button-gpio) need_value "$@"; button_gpio="$2"; shift 2 ;;
    --led-gpio) need_value "$@"; led_gpio="$2"; shift 2 ;;
    --buzzer-gpio) need_value "$@"; buzzer_gpio="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
((purge == 0 || uninstall == 1)) || die "--purge goes with --uninstall"
for n in "$button_gpio" "$led_gpio" "$buzzer_gpio"; do [[ "$n" =~ ^[0-9]{1,2}$ ]] || die "GPIO numbers are BCM numbers 0-53, got $n"; done
if [[ -n "$root" ]]; then
  [[ -d "$root" ]] || die "--root $root is not a directory"
  root="$(cd "$root" && pwd)"
fi
[[ -n "$root" || "$(id -u)" -eq 0 ]] || die "run as root (sudo $0), or use --root DIR for a staging tree"

user="sos-agent"
bin_path="$prefix/bin/sos-agent"
etc_dir="/etc/sos-agent"
config_path="$etc_dir/agent.yaml"
env_path="$etc_dir/env"
state_dir="/var/lib/sos-agent"
unit_path="/etc/systemd/system/sos-agent.service"
# A live system is managed with systemctl; a staging tree (--root) or a machine without systemd is not.
systemd=0
if [[ -z "$root" && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then systemd=1; fi
R() { printf '%s%s' "$root" "$1"; }

if ((uninstall)); then
  if ((systemd)); then
    systemctl disable --now sos-agent.service 2>/dev/null || true
  fi
  rm -f "$(R "$unit_path")" "$(R "$bin_path")"
  rm -rf "$(R "$unit_path").d"
  if ((systemd)); then systemctl daemon-reload; fi
  if ((purge)); then
    rm -rf "$(R "$etc_dir")" "$(R "$state_dir")"
    if [[ -z "$root" ]] && id "$user" >/dev/null 2>&1; then userdel "$user" 2>/dev/null || true; fi
    say "sos-agent removed with its configuration and its outbox (queued alerts are gone)."
  else
    say "sos-agent removed. Kept: $etc_dir (configuration) and $state_dir (the outbox: it may hold alerts"
    say "not yet delivered; a reinstall sends them). Remove those too with --uninstall --purge."
  fi
  exit 0
fi

# The executable for this machine.
machine="${SOS_INSTALL_MACHINE:-$(uname -m)}"
case "$machine" in
  aarch64|arm64) arch=arm64 ;;
  x86_64|amd64) arch=x64 ;;
  armv6l|armv7l|armhf|arm) die "this is a 32-bit OS ($machine); sos-agent needs Raspberry Pi OS (64-bit) on a Pi 3, 4, 5, Zero 2 W or newer" ;;
  *) die "no sos-agent build for $machine (there are linux-arm64 and linux-x64)" ;;
esac
if [[ -z "$binary" ]]; then
  for dir in ${from:+"$from"} "$here" "$here/../dist"; do
    if [[ -f "$dir/sos-agent-linux-$arch" ]]; then binary="$dir/sos-agent-linux-$arch"; break; fi
  done
  [[ -n "$binary" ]] || die "sos-agent-linux-$arch not found${from:+ in $from}, beside this script or in ../dist (build it with npm run package)"
fi
[[ -f "$binary" ]] || die "$binary does not exist"
if [[ -z "$example" ]]; then
  for f in "$here/agent.example.yaml" "$here/../config/agent.example.yaml"; do
    if [[ -f "$f" ]]; then example="$f"; break; fi
  done
fi
unit_src="$here/sos-agent.service"
[[ -f "$unit_src" ]] || die "sos-agent.service not found beside this script"

# The service user: no login, no home of its own; input and gpio for the button, LED and buzzer.
if [[ -z "$root" ]]; then
  getent group gpio >/dev/null || groupadd --system gpio
  getent group input >/dev/null || groupadd --system input
  if ! id "$user" >/dev/null 2>&1; then
    useradd --system --home-dir "$state_dir" --no-create-home --shell /usr/sbin/nologin --user-group --groups input,gpio "$user"
    say "created user $user"
  else
    usermod -a -G input,gpio "$user"
  fi
fi
own() { if [[ -z "$root" ]]; then chown "$@"; fi; }

# The program: written beside the old one and renamed over it, so a running service keeps its file intact.
install -d -m 0755 "$(R "$prefix/bin")"
tmp="$(R "$bin_path").new.$$"
install -m 0755 "$binary" "$tmp"
mv -f "$tmp" "$(R "$bin_path")"
say "installed $bin_path ($arch)"

# Configuration: never overwritten; 0600 because it may hold the API client secret.
install -d -m 0750 "$(R "$etc_dir")"
own "root:$user" "$(R "$etc_dir")"
if [[ -e "$(R "$config_path")" ]]; then
  say "kept $config_path (already there)"
elif [[ -n "$example" ]]; then
  (umask 077 && cp "$example" "$(R "$config_path").new.$$" && mv "$(R "$config_path").new.$$" "$(R "$config_path")")
  chmod 0600 "$(R "$config_path")"
  own "$user:$user" "$(R "$config_path")"
  say "created $config_path from the example: edit it before starting"
else
  die "no agent.example.yaml found (use --example FILE)"
fi
if [[ ! -e "$(R "$env_path")" ]]; then
  (umask 077 && printf '%s\n' '# Secrets for the sos-agent service (read by systemd as root; keep 0600).' \
    '# SOS_API_CLIENT_SECRET=...' '# SOS_RELAY_PASSWORD=...' >"$(R "$env_path")")
  chmod 0600 "$(R "$env_path")"
fi

# State: the outbox. systemd's StateDirectory= makes it too; made here for `sos-agent doctor` and manual runs.
install -d -m 0700 "$(R "$state_dir")"
own "$user:$user" "$(R "$state_dir")"

# The unit: ours, so replaced on every install; local changes belong in `systemctl edit sos-agent`.
install -d -m 0755 "$(R "$(dirname "$unit_path")")"
sed "s#^ExecStart=/usr/local/bin/sos-agent #ExecStart=$bin_path #" "$unit_src" >"$(R "$unit_path").new.$$"
chmod 0644 "$(R "$unit_path").new.$$"
mv -f "$(R "$unit_path").new.$$" "$(R "$unit_path")"
say "installed $unit_path"

if ((systemd)); then
  systemctl daemon-reload
  systemctl enable sos-agent.service >/dev/null 2>&1
  if ((start)) || systemctl is-active --quiet sos-agent.service; then
    systemctl restart sos-agent.service
    say "sos-agent (re)started: systemctl status sos-agent; journalctl -u sos-agent -f"
  fi
fi

config_txt=/boot/firmware/config.txt
[[ -f "$(R /boot/firmware/config.txt)" || ! -f "$(R /boot/config.txt)" ]] || config_txt=/boot/config.txt
gpio_pin() { # BCM number → physical pin on the 40-pin header
  local -a pins=([2]=3 [3]=5 [4]=7 [5]=29 [6]=31 [7]=26 [8]=24 [9]=21 [10]=19 [11]=23 [12]=32 [13]=33 [14]=8 [15]=10
    [16]=36 [17]=11 [18]=12 [19]=35 [20]=38 [21]=40 [22]=15 [23]=16 [24]=18 [25]=22 [26]=37 [27]=13)
  if [[ -n "${pins[$1]:-}" ]]; then echo "pin ${pins[$1]}"; else echo "not on the header"; fi
}
button_hex=$(printf '%x' "$button_gpio")
cat <<EOF

Wiring (BCM numbering; GND is pin 6, 9, 14, 20, 25, 30, 34 or 39):
  SOS button  GPIO$button_gpio ($(gpio_pin "$button_gpio")) to one contact, GND to the other; the internal pull-up holds it high.
  LED         GPIO$led_gpio ($(gpio_pin "$led_gpio")) -> 330 ohm resistor -> LED anode (long leg); cathode -> GND.
  Buzzer      GPIO$buzzer_gpio ($(gpio_pin "$buzzer_gpio")) -> active buzzer +; buzzer - -> GND (over ~15 mA: drive it with a transistor).

Add to $config_txt, then reboot:
  dtoverlay=gpio-key,gpio=$button_gpio,active_low=1,gpio_pull=up,keycode=639,label="SOS"
  dtoverlay=gpio-led,gpio=$led_gpio,label=sos,trigger=none
  dtoverlay=gpio-led,gpio=$buzzer_gpio,label=sos-buzzer,trigger=none
(keycode 639 is KEY_SOS; the overlay's default, 116 KEY_POWER, would make a press shut the Pi down.)

Then, in $config_path:
  button:   { source: evdev, device: /dev/input/by-path/platform-button@$button_hex-event, key_code: 639 }
  feedback: { led: sos, buzzer: sos-buzzer }
  and the caller, the vehicle, the GPS and the API credentials (secrets may go in $env_path).

Check and start:
  sudo -u $user $bin_path config check $config_path
  sudo -u $user $bin_path doctor --config $config_path
  sudo systemctl start sos-agent && journalctl -u sos-agent -f
EOF
