"""Event-camera data: readers for the raw releases and binning of events into frames.

Two datasets are read here, with no third-party event library:
- IBM DVS128 Gesture, as released: `userNN_<lighting>.aedat` (AEDAT 3.1) plus `_labels.csv`.
- N-MNIST, as released: one `.bin` file per sample (5-byte events).

Events are kept as two arrays: `t` (int64, microseconds) and `xyp` (N x 3: x, y, polarity),
the layout of the HDF5 file that data/dvs-hdf5-gen.py writes. Frames use the axis order
(polarity, x, y, time): time last, the layout the conv networks take.
"""
import os
import re
import struct
from bisect import bisect_left

import numpy as np

DVS_GESTURE_URL = "https://research.ibm.com/interactive/dvsgesture/"
NMNIST_URL = "https://www.garrickorchard.com/datasets/n-mnist"
SOURCE_FILE = "source.json"  # written by data/nmnist-dataset-gen.py beside the frames: what they were made from
DVS_SENSOR = 128     # DVS128: 128 x 128 pixels
NMNIST_SENSOR = 34   # N-MNIST: 34 x 34 pixels
N_GESTURES = 11      # class ids 1..11 in the label files
LAST_TRAIN_USER = 23  # users 01-23 train, 24-29 test (as dcll and every other loader)
BINNING_MODES = ("original", "corrected")


class DataError(Exception):
    """Missing or malformed dataset input. The message says what, where, and how to fix it."""


# ----------------------------------------------------------------------------- DVS Gesture

_PACKET_HEADER = struct.Struct("<hhiiiiii")  # type, source, size, ts offset, overflow, capacity, number, valid
_POLARITY_EVENT = np.dtype([("data", "<u4"), ("ts", "<i4")])


def read_aedat31(path):
    """Read all polarity events of an AEDAT 3.1 file. Returns t (int64 us), xyp (N x 3 uint16).

    The ASCII header is skipped up to `#!END-HEADER\\r\\n`. Each packet is a 28-byte header then
    eventNumber events of eventSize bytes (in files eventCapacity == eventNumber). Packets of any
    other type than 1 (polarity) are skipped. t = timestamp | eventTSOverflow << 31.
    Like dcll, the valid bit is not checked.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.startswith(b"#!AER-DAT3"):
        raise DataError(f"{path}: not an AEDAT 3.x file (it does not start with '#!AER-DAT3').")
    end = raw.find(b"#!END-HEADER\r\n")
    if end < 0:
        raise DataError(f"{path}: the header has no '#!END-HEADER' line; the file is truncated or corrupt.")
    pos = end + len(b"#!END-HEADER\r\n")
    ts, data = [], []
    while pos < len(raw):
        if pos + _PACKET_HEADER.size > len(raw):
            raise DataError(f"{path}: truncated packet header at byte {pos} "
                            f"(file ends after {len(raw)} bytes); re-download or re-extract it.")
        etype, _, size, _, overflow, _, number, _ = _PACKET_HEADER.unpack_from(raw, pos)
        pos += _PACKET_HEADER.size
        nbytes = number * size
        if size <= 0 or number < 0 or pos + nbytes > len(raw):
            raise DataError(f"{path}: truncated or corrupt packet at byte {pos - _PACKET_HEADER.size} "
                            f"({number} events of {size} bytes announced, {len(raw) - pos} bytes left); "
                            "re-download or re-extract it.")
        if etype == 1:
            if size != _POLARITY_EVENT.itemsize:
                raise DataError(f"{path}: polarity packet at byte {pos - _PACKET_HEADER.size} "
                                f"has {size}-byte events, expected 8.")
            ev = np.frombuffer(raw, _POLARITY_EVENT, count=number, offset=pos)
            data.append(ev["data"])
            ts.append(ev["ts"].astype(np.int64) | (np.int64(overflow) << 31))
        pos += nbytes
    if not data:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.uint16)
    d = np.concatenate(data)
    xyp = np.stack([(d >> 17) & 0x1FFF, (d >> 2) & 0x1FFF, (d >> 1) & 1], axis=1).astype(np.uint16)
    return np.concatenate(ts), xyp


def read_gesture_labels(path):
    """Read a `_labels.csv` (header, then class 1..11, start us, end us). Returns (n, 3) uint32."""
    if not os.path.isfile(path):
        raise DataError(f"missing label file {path}: every userNN_<lighting>.aedat of DvsGesture.tar.gz "
                        f"comes with a userNN_<lighting>_labels.csv beside it ({DVS_GESTURE_URL}).")
    try:
        labels = np.loadtxt(path, skiprows=1, delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise DataError(f"{path}: not a 'class,startTime_usec,endTime_usec' table ({e}).") from None
    if labels.shape[1] != 3 or len(labels) == 0:
        raise DataError(f"{path}: expected rows 'class,startTime_usec,endTime_usec', got shape {labels.shape}.")
    if labels[:, 0].min() < 1 or labels[:, 0].max() > N_GESTURES:
        raise DataError(f"{path}: class ids must be 1..{N_GESTURES}.")
    return labels.astype(np.uint32)


def clip_to_gestures(t, xyp, labels):
    """Keep the events inside the labelled gestures, `start <= t < end` for each label row in order,
    pieces concatenated (as dcll: overlapping rows duplicate events; events are assumed time-sorted)."""
    pieces = [(np.searchsorted(t, start), np.searchsorted(t, end)) for _, start, end in labels]
    idx = np.concatenate([np.arange(a, b) for a, b in pieces]) if pieces else np.zeros(0, int)
    return t[idx], xyp[idx]


def load_gesture_recording(aedat_path):
    """One IBM recording: its labelled events and labels. Returns t, xyp (uint16), labels."""
    labels = read_gesture_labels(aedat_path[:-len(".aedat")] + "_labels.csv")
    t, xyp = read_aedat31(aedat_path)
    t, xyp = clip_to_gestures(t, xyp, labels)
    return t, xyp, labels


def find_gesture_recordings(folder):
    """The `userNN_*.aedat` files of an extracted DvsGesture folder, sorted by name and split by
    subject: users 01-23 train, 24-29 test. Returns (train_paths, test_paths)."""
    if not os.path.isdir(folder):
        raise DataError(f"DVS Gesture folder not found: {folder}. "
                        f"Download DvsGesture.tar.gz from IBM ({DVS_GESTURE_URL}) and extract it so that "
                        f"{os.path.join(folder, 'user01_fluorescent.aedat')} exists "
                        f"(tar xzf DvsGesture.tar.gz -C {os.path.dirname(os.path.abspath(folder))}).")
    train, test = [], []
    for name in sorted(os.listdir(folder)):
        m = re.fullmatch(r"user(\d\d)_.+\.aedat", name)
        if m and 1 <= int(m.group(1)) <= 29:
            (train if int(m.group(1)) <= LAST_TRAIN_USER else test).append(os.path.join(folder, name))
    if not train or not test:
        missing = "users 01-23 (train)" if not train else "users 24-29 (test)"
        raise DataError(f"{folder} has no userNN_<lighting>.aedat files of {missing}. "
                        f"Extract the whole DvsGesture.tar.gz from IBM ({DVS_GESTURE_URL}) there.")
    return train, test


# ----------------------------------------------------------------------------- N-MNIST

def read_nmnist_bin(path):
    """Read an N-MNIST sample. Returns t (int64 us), xyp (N x 3 uint16).

    Each event is 5 bytes: x, y, then polarity (bit 7 of byte 2) and a 23-bit timestamp
    (byte 2 bits 6-0, bytes 3, 4). The legacy overflow marker (y == 240) never occurs in the
    release and is not interpreted.
    """
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % 5:
        raise DataError(f"{path}: truncated N-MNIST file ({raw.size} bytes, not a multiple of 5); "
                        "re-extract it from the N-MNIST release.")
    ev = raw.reshape(-1, 5).astype(np.int64)
    t = ((ev[:, 2] & 0x7F) << 16) | (ev[:, 3] << 8) | ev[:, 4]
    xyp = np.stack([ev[:, 0], ev[:, 1], ev[:, 2] >> 7], axis=1).astype(np.uint16)
    return t, xyp


# ----------------------------------------------------------------------------- binning

def event_window(t, start_time, T, dt, mode="original"):
    """Index range [beg, end) of the events one window uses. The window begins at the first event
    with t >= start_time (t0). It ends before start_time + T*dt ('original', as dcll) or before
    t0 + T*dt ('corrected')."""
    beg = bisect_left(t, start_time)
    if beg == len(t):
        return beg, beg
    stop = start_time + T * dt if mode == "original" else int(t[beg]) + T * dt
    return beg, beg + bisect_left(t[beg:], stop)


def bin_window(t, xyp, T, dt, ds=1, mode="original", sensor=DVS_SENSOR):
    """Count the events of one window (cut by event_window) into frames (2, S, S, T), S = sensor // ds,
    axes (polarity, x // ds, y // ds, time). t0 = t[0]. An empty window gives zero frames.

    'original', exactly dcll's chunk_evs_pol: frame times ts[i] = t0 + i*dt, frame i holds the events
        in [ts[i-1], ts[i]), so frame 0 is empty and the last dt of the window is dropped; counts are
        int8 and wrap above 127 (130 events give -126).
    'corrected': frame i holds the events in [t0 + i*dt, t0 + (i+1)*dt); counts are int16, saturating
        at 32767 (far above what 20 ms of a DVS128 gives).
    """
    if mode not in BINNING_MODES:
        raise ValueError(f"binning mode must be one of {BINNING_MODES}, got {mode!r}")
    S = sensor // ds
    if len(t) == 0:
        return np.zeros((2, S, S, T), np.int8 if mode == "original" else np.int16)
    if xyp[:, :2].max() >= sensor:
        raise DataError(f"event coordinates go up to {xyp[:, :2].max()}, outside the {sensor}x{sensor} sensor.")
    t0 = int(t[0])
    if mode == "original":  # the same bisect steps as dcll, so even unsorted times give its result
        bounds, b = [], 0
        for i in range(T):
            b += bisect_left(t[b:], t0 + i * dt)
            bounds.append(b)
        frame = np.repeat(np.arange(T), np.diff([0] + bounds))
        xyp = xyp[:bounds[-1]]
    else:
        frame = (np.asarray(t, np.int64) - t0) // dt
        keep = (frame >= 0) & (frame < T)
        frame, xyp = frame[keep], xyp[keep]
    x, y, p = (xyp[:, i].astype(np.int64) for i in range(3))
    flat = ((p * S + x // ds) * S + y // ds) * T + frame
    counts = np.bincount(flat, minlength=2 * S * S * T).reshape(2, S, S, T)
    if mode == "original":
        return counts.astype(np.int8)  # modular cast: the int8 wrap-around of np.add.at
    return np.minimum(counts, np.iinfo(np.int16).max).astype(np.int16)


def bin_events(t, xyp, start_time, T, dt, ds=1, mode="original", sensor=DVS_SENSOR):
    """Frames (2, S, S, T) of the window that starts at start_time (see event_window, bin_window)."""
    beg, end = event_window(t, start_time, T, dt, mode)
    return bin_window(t[beg:end], xyp[beg:end], T, dt, ds, mode, sensor)


def binary_frames(t, xyp, T, dt, sensor=NMNIST_SENSOR):
    """Binary spike frames (2, sensor, sensor, T) uint8, axes (polarity, x, y, time): frame i is 1
    where at least one event has t in [i*dt, (i+1)*dt), counted from t = 0 of the recording."""
    if len(t) and xyp[:, :2].max() >= sensor:
        raise DataError(f"event coordinates go up to {xyp[:, :2].max()}, outside the {sensor}x{sensor} sensor.")
    frame = np.asarray(t, np.int64) // dt
    keep = (frame >= 0) & (frame < T)
    out = np.zeros((2, sensor, sensor, T), np.uint8)
    out[xyp[keep, 2], xyp[keep, 0], xyp[keep, 1], frame[keep]] = 1
    return out
