"""The tam-giang square and tracks around its east edge, for the geofence and vessel-outage tests.

Example: ``nmea_fix(T0 + s * 1000, LAT, lon_east(outage_track(s)))`` is second ``s`` of 48 hours at sea.
"""

from __future__ import annotations

import math

from edge.geofence import metres_per_degree

WEST, EAST, SOUTH, NORTH = 107.50, 107.56, 16.60, 16.64
SQUARE = [(WEST, SOUTH), (EAST, SOUTH), (EAST, NORTH), (WEST, NORTH), (WEST, SOUTH)]
LAT = 16.62  # mid-way up the east edge: the nearest boundary of every point of the tracks below
T0 = 1_764_072_000_000
HOURS_48 = 48 * 3600


def lon_east(metres: float, lat: float = LAT) -> float:
    """The longitude ``metres`` east of the square's east edge, at ``lat``."""
    return EAST + metres / metres_per_degree(lat)[0]


def outage_track(second: int) -> float:
    """Metres east of the east edge at ``second`` of 48 hours: in the zone, out from hour 20 to 26.

    Each crossing hovers on the line for ten minutes (GPS noise and the swell: +-45 m).
    """
    hover = 45 * math.sin(second / 7)
    if second < 20 * 3600 - 600:
        return -2000 + 1000 * math.sin(second / 3600)
    if second < 20 * 3600:
        return hover
    if second < 26 * 3600 - 600:
        return 1500 * min(1.0, (second - 20 * 3600) / 600 + 0.05)
    if second < 26 * 3600:
        return hover
    return -1500
