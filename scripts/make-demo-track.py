#!/usr/bin/env python3
"""Writes config/demo-track.nmea: a synthetic 5-minute drive in Baltimore at 1 Hz (GGA, GSA, GST, RMC),
for the demo and the simulator. Synthetic so that it carries no one's real track and can be regenerated."""
import math, functools, sys

def cs(body):
    return '%02X' % functools.reduce(lambda a, c: a ^ ord(c), body, 0)

def s(body):
    return '$%s*%s\r\n' % (body, cs(body))

def dm(value, is_lat):
    hemi = ('N' if value >= 0 else 'S') if is_lat else ('E' if value >= 0 else 'W')
    v = abs(value); d = int(v); m = (v - d) * 60
    return ('%02d%07.4f' if is_lat else '%03d%07.4f') % (d, m), hemi

lat, lon = 39.285270, -76.612470
heading = 80.0
out = []
for t in range(300):
    hh, mm, ss = 14, (t // 60), t % 60
    time = '%02d%02d%02d.00' % (hh, mm, ss)
    speed = 0 if t < 20 else 11.0 + 3 * math.sin(t / 17.0)   # m/s; parked for the first 20 s
    heading = (heading + (4 if 120 <= t < 140 else 0)) % 360
    lat += speed * math.cos(math.radians(heading)) / 111320.0
    lon += speed * math.sin(math.radians(heading)) / (111320.0 * math.cos(math.radians(lat)))
    la, ns = dm(lat, True); lo, ew = dm(lon, False)
    hdop = 0.9 + 0.3 * math.sin(t / 23.0)
    out.append(s('GPGGA,%s,%s,%s,%s,%s,1,09,%.1f,12.0,M,-33.0,M,,' % (time, la, ns, lo, ew, hdop)))
    out.append(s('GPGSA,A,3,02,05,07,09,13,16,20,27,30,,,,%.1f,%.1f,1.5' % (hdop * 1.6, hdop)))
    out.append(s('GPGST,%s,1.2,2.1,1.6,75.0,%.1f,%.1f,3.4' % (time, 1.8 + 0.4 * math.sin(t / 11.0), 2.0 + 0.4 * math.cos(t / 13.0))))
    out.append(s('GPRMC,%s,A,%s,%s,%s,%s,%.1f,%.1f,271126,,,A' % (time, la, ns, lo, ew, speed * 1.943844, heading)))
sys.stdout.write('# synthetic demo track, Baltimore, 300 s at 1 Hz; made by scripts/make-demo-track.py\n')
sys.stdout.write(''.join(out))
