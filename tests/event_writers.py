"""Writers for the raw event formats, to build tiny fake datasets in tests (test-only code)."""
import os
import struct

import numpy as np

AEDAT_HEADER = (b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n"
                b"#Start-Time: 2017-01-01 00:00:00 (TZ+0000)\r\n#!END-HEADER\r\n")


def polarity_packet(x, y, p, t):
    """One AEDAT 3.1 polarity packet; t may exceed 2**31 (the overflow goes into the header).
    All events of one packet must share the same t >> 31."""
    x, y, p, t = (np.asarray(a, np.int64) for a in (x, y, p, t))
    overflow = int(t[0] >> 31)
    assert np.all(t >> 31 == overflow), "a packet cannot straddle an overflow boundary"
    n = len(t)
    body = np.empty(n, [("d", "<u4"), ("t", "<i4")])
    body["d"] = (x << 17) | (y << 2) | (p << 1) | 1
    body["t"] = t & 0x7FFFFFFF
    return struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, n) + body.tobytes()


def special_packet(n=3):
    """A non-polarity packet (type 0, special events) that readers must skip."""
    return struct.pack("<hhiiiiii", 0, 1, 8, 4, 0, n, n, n) + bytes(range(8 * n))


def write_aedat31(path, packets):
    with open(path, "wb") as f:
        f.write(AEDAT_HEADER + b"".join(packets))


def write_gesture_labels(path, rows):
    """rows: [(class 1..11, start us, end us)]."""
    with open(path, "w") as f:
        f.write("class,startTime_usec,endTime_usec\n")
        f.writelines(f"{c},{s},{e}\n" for c, s, e in rows)


def write_gesture_recording(folder, name, t, xyp, rows, packet_size=50):
    """userNN_<lighting>.aedat (events split in packets) plus its _labels.csv."""
    packets = [polarity_packet(xyp[i:i + packet_size, 0], xyp[i:i + packet_size, 1],
                               xyp[i:i + packet_size, 2], t[i:i + packet_size])
               for i in range(0, len(t), packet_size)]
    write_aedat31(os.path.join(folder, name + ".aedat"), packets)
    write_gesture_labels(os.path.join(folder, name + "_labels.csv"), rows)


def write_nmnist_bin(path, x, y, p, t):
    """N-MNIST sample: 5 bytes per event (x, y, polarity bit 7 + 23-bit timestamp)."""
    x, y, p, t = (np.asarray(a, np.int64) for a in (x, y, p, t))
    raw = np.empty((len(t), 5), np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (p << 7) | ((t >> 16) & 0x7F)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    raw.tofile(path)
