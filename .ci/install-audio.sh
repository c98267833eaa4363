#!/bin/sh
# Install what the PortAudio rig tests need (tests/rig/test_portaudio_jack.py and the
# end-to-end station run tests/rig/test_station_run_jack.py, which start their own jackd):
# libportaudio2 (python-sounddevice's backend) and jackd2 (JACK server whose
# dummy backend gives a real full-duplex stream without a sound card; also
# provides libjack for the JACK-Client python package).
# Idempotent and quiet: does nothing when both are already installed.
set -eu
need=""
for pkg in libportaudio2 jackd2; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need="$need $pkg"
done
[ -z "$need" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
# jackd2's postinst asks about real-time priority: answer non-interactively.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
