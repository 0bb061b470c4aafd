"""The chaos test's input: a deterministic, realistic event stream (several
orgs, zones, license types and users; logins, activity with idle gaps that
make the inactivity timeouts fire, logouts, relogins, type switches, denials,
downgrades, implicit logins and orphans) and an independent model of SPEC.md
section 3 that predicts what the pipeline must count.

Why two runs of this stream can be compared number for number (the chaos run
with kill -9 and a reference run without): the pipeline is a deterministic
function of ingest's journal, and the journals of the two runs differ only
in (a) how one org's events interleave with other orgs' events, and (b) the
arrival times ingest stamps and the clock ticks it journals while the stream
pauses (a killed ingest, a slow machine). The stream is built so that neither
can change a number:

- Each org is sent by one `licmonctl send` in event-time order (the sender
  resends unacknowledged batches oldest first, so a kill keeps the order).
  Orgs never share sessionizer state, so (a) is harmless.
- The sessionizer's org clock of a backfill (this stream's events are days
  old) is its highest event time; only after ten quiet minutes does the
  wall clock carry it forward (sessionizer/sess_engine.c, "Clock and
  lateness"), and no pause here is that long. Every org is still set to an
  allowed lateness of LATENESS_S (30 min), so the comparison also holds for
  a live clock; tests/integration/test_chaos.py runs the default 5 s too.
  No event is ever late and no timer fires before an event that is due to
  reset it: each user's changes are a function of that user's events alone.
- Timers that fire at a different moment of the stream still fire at their
  due instant, so what the aggregator sees is the same set of changes in a
  different order across users, all within the lateness (its minutes stay
  open for lateness + 60 s): the same rows.
- A finished user record is forgotten once the horizon is an hour past its
  last instant f, and that resets the n of later session ids. Whether the
  horizon passed f + 1 h when the user's next event (ts) is applied depends
  on the pause G when ts lies in [f + 1 h + lateness - G, f + 1 h + lateness).
  The generator never puts a user's next event in that window (with G up to
  FORGET_MARGIN_S = 10 min), so session ids are the same too.
- The stream ends per org with a sentinel denial far enough after the last
  real event (lateness + the longest timeout + 1 h + 10 min) that every
  timer of every user fires, and every record is forgotten, by event time
  and not by how long the test then takes. The org `longrun` instead keeps
  its sessions open (24 h user and 7 d license timeouts, all its events in
  the last 12 h of event time), so /current has something to compare; its
  timers cannot fire before the wall clock has run 12 h past the stream.
- Settings are set before any event of the org (they then take effect from
  its first event), and nothing asked of the API depends on today's date
  (no expiry dates; explicit date ranges; session_length_s dropped).
"""
import bisect
import datetime as dt
import json
import os
import random
from zoneinfo import ZoneInfo

LATENESS_S = 1800
FORGET_MARGIN_S = 600
HOUR_MS = 3600 * 1000
MIN_MS = 60 * 1000

# org -> settings (the JSON of PUT /settings) and the user population
ORGS = {
    "acme": {
        "settings": {"timezone": "Europe/Berlin", "user_inactivity_timeout_s": 900,
                     "license_inactivity_timeout_s": 1800,
                     "inactivity_logout_releases_license": False,
                     "allowed_lateness_s": LATENESS_S,
                     "licenses": [{"type": "creator", "model": "floating", "owned": 25},
                                  {"type": "reviewer", "model": "floating", "owned": 40},
                                  {"type": "stakeholder", "model": "named", "owned": 100}]},
        "share": 0.40, "types": [("creator", 5), ("reviewer", 4), ("stakeholder", 2)],
        "downgrade": ("creator", "reviewer"),
    },
    "globex": {
        "settings": {"timezone": "America/New_York", "user_inactivity_timeout_s": 600,
                     "license_inactivity_timeout_s": 3600,
                     "inactivity_logout_releases_license": True,
                     "allowed_lateness_s": LATENESS_S,
                     "licenses": [{"type": "creator", "model": "floating", "owned": 15},
                                  {"type": "test_runner", "model": "floating", "owned": 10}]},
        "share": 0.30, "types": [("creator", 3), ("test_runner", 2)],
        "downgrade": ("creator", "test_runner"),
    },
    "initech": {
        # L < U: a hold is released while its session is still open and
        # taken again by the next activity
        "settings": {"timezone": "UTC", "user_inactivity_timeout_s": 3600,
                     "license_inactivity_timeout_s": 1200,
                     "allowed_lateness_s": LATENESS_S,
                     "licenses": [{"type": "reviewer", "model": "floating", "owned": 12},
                                  {"type": "creator", "model": "floating", "owned": 8}]},
        "share": 0.22, "types": [("reviewer", 3), ("creator", 2)],
        "downgrade": ("creator", "reviewer"),
    },
    "longrun": {
        "settings": {"timezone": "Asia/Kathmandu", "user_inactivity_timeout_s": 86400,
                     "license_inactivity_timeout_s": 604800,
                     "allowed_lateness_s": LATENESS_S,
                     "licenses": [{"type": "creator", "model": "floating", "owned": 30}]},
        "share": 0.08, "types": [("creator", 1)],
        "downgrade": None,
    },
}

EVENTS_PER_USER_DAY = 55  # about, for sizing the population


def pick_window(before, after, today=None):
    """Local dates [first, last] around the most recent change of
    Europe/Berlin's UTC offset (a 23- or 25-hour day) such that the window
    ends at least three days ago: `before` days before that day, `after`
    days after it. The US change, a week later in autumn, falls inside a
    long window."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    berlin = ZoneInfo("Europe/Berlin")
    d = today - dt.timedelta(days=3 + after)
    for _ in range(400):
        a = dt.datetime(d.year, d.month, d.day, 12, tzinfo=berlin).utcoffset()
        b = (dt.datetime(d.year, d.month, d.day, 12, tzinfo=berlin)
             - dt.timedelta(days=1)).utcoffset()
        if a != b:
            break
        d -= dt.timedelta(days=1)
    return d - dt.timedelta(days=before), d + dt.timedelta(days=after)


def local_ms(tz, day, minutes):
    """UTC ms of `minutes` after local midnight of `day` in zone tz (wall-clock
    minutes; a time in a DST gap moves forward)."""
    base = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
    t = base + dt.timedelta(minutes=minutes)
    # normalise through UTC so that a nonexistent local time is resolved
    return int(t.astimezone(dt.timezone.utc).timestamp() * 1000)


def fnv1a(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


FNV_SEED = 0xCBF29CE484222325


class UserModel:
    """SPEC.md section 3 for one user whose events come in time order, with
    the sessionizer's documented choices (README "Time, lateness and
    timeouts", the head of sessionizer/sess_engine.c): one type for the
    session and its seat, relogin with the same type keeps the seat,
    timeouts at exactly last_activity + U / + L, a finished record forgotten
    an hour past its last instant (which restarts the n of session ids).
    Written from the spec for this test, independent of the C code.

    Outputs, shared per org: counts [(what, type, ms, user)], holds
    [[user, type, start, end or None]] and the session records
    {session_id: record} as the API shows them (an open session's
    last_activity as last emitted: the sessionizer re-emits an open session
    once its activity moved a minute)."""

    def __init__(self, org, user, U, L, releases, late, counts, holds, records, alt_ids=None):
        self.org, self.user = org, user
        self.alt_ids = {} if alt_ids is None else alt_ids
        self.U, self.L, self.releases, self.late = U, L, releases, late
        self.counts, self.holds, self.records = counts, holds, records
        self.hash = "%016x" % fnv1a(fnv1a(FNV_SEED, org.encode() + b"\0"), user.encode())
        self._fresh()

    def _fresh(self):
        self.sess = None  # None | "open" | "ended"
        self.hold = None  # the open interval in self.holds, or None
        self.type = self.req = None
        self.la = self.start = self.end = self.emitted_la = 0
        self.seg = self.held = self.rel = 0
        self.nsess = self.nsame = self.start_prev = 0
        self.end_reason = "open"
        self.utime = None

    def _count(self, what, typ, t):
        self.counts.append((what, typ, t, self.user))

    def due(self):
        d = None
        if self.sess == "open":
            d = self.la + self.U
        if self.hold is not None:
            d = min(d, self.la + self.L) if d is not None else self.la + self.L
        return d

    def finished_at(self):
        """The record's last instant when nothing is open, else None."""
        if self.sess != "open" and self.hold is None and self.utime is not None:
            return self.utime
        return None

    def _emit(self):
        sid = f"{self.hash}-{self.start}-{self.nsess}"
        # the n the sessionizer would give if it counted only the sessions
        # begun at this same instant (the fix proposed for the dependence of
        # ids on when a record is forgotten): either is accepted
        self.alt_ids[sid] = f"{self.hash}-{self.start}-{self.nsame}"
        r = {"session_id": sid, "user": self.user, "license_type": self.type,
             "requested_type": self.req or None, "start": self.start}
        if self.sess == "ended":
            r.update(last_activity=self.la, end=self.end, end_reason=self.end_reason,
                     user_inactivity_s=(self.end - self.start) // 1000,
                     license_inactivity_s=self.held // 1000,
                     license_released_at=self.rel or None,
                     license_tail_s=(self.rel - self.end) // 1000 if self.rel > self.end else 0)
        else:
            self.emitted_la = self.la
            r.update(last_activity=self.la, end=None, end_reason="open")
        self.records[sid] = r

    def _acquire(self, t):
        self.hold = [self.user, self.type, t, None]
        self.holds.append(self.hold)
        self.seg = t
        self.rel = 0

    def _release(self, t, reason):
        if self.sess == "open":
            self.held += t - self.seg
        self.rel = t
        self.hold[3] = t
        self.hold = None
        if reason == "license_inactivity":
            self._count("license_timeouts", self.type, t)

    def _end(self, t, reason):
        if self.hold is not None:
            self.held += t - self.seg
            self.rel = 0
        self.sess = "ended"
        self.end = t
        self.end_reason = reason
        if reason == "user_inactivity":
            self._count("user_timeouts", self.type, t)
        elif reason == "manual_logout":
            self._count("logouts", self.type, t)

    def fire_until(self, t):
        """Fires every timeout due at or before t (a timeout due at t fires
        before an event at t)."""
        while True:
            d = self.due()
            if d is None or d > t:
                return
            record = False
            if self.sess == "open" and self.la + self.U <= d:
                self._end(d, "user_inactivity")
                record = True
                if self.hold is not None and self.releases:
                    self._release(d, "user_inactivity")
            if self.hold is not None and self.la + self.L <= d:
                self._release(d, "license_inactivity")
                record |= self.sess == "ended"
            if record:
                self._emit()
            self.utime = max(self.utime, d)

    def _login(self, t, typ, req, implicit):
        old_changed = keep = False
        if self.sess == "open":
            self._end(t, "relogin")
            old_changed = True
        if self.hold is not None:
            if self.type == typ:
                keep = True
                if self.sess == "ended":
                    self.rel = t  # taken over by the new session
                    old_changed = True
            else:
                self._release(t, "switched")
                old_changed |= self.sess == "ended"
        if old_changed:
            self._emit()
        self._count("implicit_logins" if implicit else "logins", typ, t)
        if req:
            self._count("downgrades", req, t)
        self.type, self.req = typ, req
        self.sess = "open"
        self.end_reason = "open"
        self.start = self.la = t
        self.end = self.held = 0
        self.nsame = self.nsame + 1 if self.start_prev == t else 1
        self.start_prev = t
        self.nsess += 1
        if keep:
            self.seg = t
            self.rel = 0
        else:
            self._acquire(t)
        self._emit()

    def apply(self, kind, t, typ=None, req=None):
        self.fire_until(t)
        f = self.finished_at()
        if f is not None and t - self.late >= f + HOUR_MS:
            self._fresh()  # the sessionizer forgot the record
        if kind == "denied":
            self.counts.append(("denials", typ, t, self.user))
            return
        if self.utime is None:
            self.utime = t
        if kind == "login":
            self._login(t, typ, req if req and req != typ else None, False)
        elif kind == "activity":
            if self.sess == "open":
                self.la = max(self.la, t)
                if self.hold is None:
                    self._acquire(t)
                if self.la - self.emitted_la >= 60000:
                    self._emit()
            elif self.hold is not None:
                self._login(t, typ or self.type, None, True)
            elif typ:
                self._login(t, typ, None, True)
            else:
                self._count("orphans", "", t)
        elif kind == "logout":
            if self.sess == "open":
                self._end(t, "manual_logout")
                if self.hold is not None:
                    self._release(t, "manual_logout")
                self._emit()
            elif self.hold is not None:
                self._release(t, "manual_logout")
                self._emit()
            else:
                self._count("orphans", "", t)
        self.utime = max(self.utime, t)


class Workload:
    """Builds the events of every org for `days` local days; `events` is the
    approximate total. Everything follows from seed."""

    def __init__(self, seed, events, before=1, after=2, today=None):
        self.seed = seed
        self.first, self.last = pick_window(before, after, today)
        n = (self.last - self.first).days + 1
        self.days = [self.first + dt.timedelta(days=i) for i in range(n)]
        rng = random.Random(seed)
        self.events = {}     # org -> list of event dicts in send order
        self.counts = {}     # org -> [(what, type, ms, user)]
        self.holds = {}      # org -> [[user, type, start, end or None]]
        self.records = {}    # org -> {session_id: record}
        self.alt_ids = {}    # org -> {session_id: the id with n counted per instant}
        self.models = {}     # org -> {user: UserModel}
        self._idx = {}
        user_days = events / EVENTS_PER_USER_DAY
        active = sum(0.15 if d.weekday() >= 5 else 0.85 for d in self.days)
        for org, spec in ORGS.items():
            ndays = 0.85 if org == "longrun" else active
            nusers = max(4, int(user_days * spec["share"] / ndays))
            self._build_org(org, spec, nusers, random.Random(rng.getrandbits(64)))

    # ---- generation ----

    def _build_org(self, org, spec, nusers, rng):
        s = spec["settings"]
        tz = ZoneInfo(s["timezone"])
        U = s.get("user_inactivity_timeout_s", 7200) * 1000
        L = s.get("license_inactivity_timeout_s", 7200) * 1000
        releases = s.get("inactivity_logout_releases_license", False)
        late = s["allowed_lateness_s"] * 1000
        types = [t for t, _ in spec["types"]]
        weights = [w for _, w in spec["types"]]
        per_user = []
        for i in range(nusers):
            user = f"u{i:04d}@{org}.example"
            primary = rng.choices(types, weights)[0]
            per_user.append(self._user_events(org, spec, user, primary, types, tz, U, L, late,
                                              rng))
        counts, holds, records, models, alt_ids = [], [], {}, {}, {}
        evs = []
        for seq_u, evl in enumerate(per_user):
            for k, e in enumerate(evl):
                evs.append((e["ts"], seq_u, k, e))
        evs.sort(key=lambda x: x[:3])
        ordered = [e for *_, e in evs]
        # the model, in the same order, and the forget rule checked
        for e in ordered:
            m = models.get(e["user"])
            if m is None:
                m = models[e["user"]] = UserModel(org, e["user"], U, L, releases, late, counts,
                                                  holds, records, alt_ids)
            m.fire_until(e["ts"])
            f = m.finished_at()
            if f is not None:
                lo, hi = f + HOUR_MS + late - FORGET_MARGIN_S * 1000, f + HOUR_MS + late
                assert not (lo <= e["ts"] < hi), (org, e)
            m.apply(e["kind"], e["ts"], e.get("license_type"), e.get("requested_type"))
        if org != "longrun" and ordered:
            end = ordered[-1]["ts"] + late + max(U, L) + HOUR_MS + 10 * MIN_MS
            sentinel = {"event_id": f"{org}-sentinel", "org": org, "user": "zz-sentinel",
                        "ts": end, "kind": "denied", "license_type": types[0]}
            ordered.append(sentinel)
            counts.append(("denials", types[0], end, "zz-sentinel"))
            for m in models.values():
                m.fire_until(end)
        self.events[org] = ordered
        self.counts[org] = counts
        self.holds[org] = holds
        self.records[org] = records
        self.alt_ids[org] = alt_ids
        self.models[org] = models

    def _user_events(self, org, spec, user, primary, types, tz, U, L, late, rng):
        """One user's events in time order, obeying the forget rule."""
        out = []
        state = {"n": 0, "model": UserModel(org, user, U, L,
                                            spec["settings"].get(
                                                "inactivity_logout_releases_license", False),
                                            late, [], [], {})}
        minute_aligned = rng.random() < 0.15

        def emit(kind, ts, typ=None, req=None):
            m = state["model"]
            if minute_aligned and rng.random() < 0.3:
                ts = -(-ts // MIN_MS) * MIN_MS  # up to the next whole minute
            if out and ts <= out[-1]["ts"]:
                ts = out[-1]["ts"] + 1
            m.fire_until(ts)
            f = m.finished_at()
            if f is not None:
                lo, hi = f + HOUR_MS + late - FORGET_MARGIN_S * 1000, f + HOUR_MS + late
                if lo <= ts < hi:
                    ts = hi + rng.randrange(0, 20 * MIN_MS)
                    m.fire_until(ts)
            e = {"event_id": f"{org}:{user}:{state['n']}", "org": org, "user": user, "ts": ts,
                 "kind": kind}
            if typ:
                e["license_type"] = typ
            if req:
                e["requested_type"] = req
            state["n"] += 1
            m.apply(kind, ts, typ, req)
            out.append(e)
            return ts

        if org == "longrun":
            day = self.days[-1]
            start_min = rng.randrange(7 * 60, 12 * 60)
            self._block(emit, rng, local_ms(tz, day, start_min),
                        rng.randrange(60, 240) * MIN_MS, primary, types, spec, U, L,
                        long_timeouts=True)
            return out
        for day in self.days:
            weekend = day.weekday() >= 5
            if rng.random() > (0.15 if weekend else 0.85):
                continue
            t = local_ms(tz, day, rng.randrange(7 * 60, 10 * 60 + 30) + rng.random())
            for b in range(rng.choice([1, 1, 2, 2, 3])):
                length = rng.randrange(30, 240) * MIN_MS
                t = self._block(emit, rng, t, length, primary, types, spec, U, L)
                t += rng.randrange(15, 80) * MIN_MS
        return out

    def _block(self, emit, rng, t, length, primary, types, spec, U, L, long_timeouts=False):
        """A work block from t: a login (maybe denied first, maybe
        downgraded, maybe implicit), activity with idle gaps, an optional
        logout. Returns the time after it."""
        typ = primary
        dg = spec["downgrade"]
        if rng.random() < 0.07:
            t = emit("denied", t, typ)
            t += rng.randrange(1, 12) * MIN_MS
            if dg and typ == dg[0] and rng.random() < 0.5:
                t = emit("login", t, dg[1], dg[0])
                typ = dg[1]
            else:
                t = emit("login", t, typ)
        elif rng.random() < 0.08:
            t = emit("activity", t, typ)  # implicit login (or the hold lingers)
        else:
            if dg and typ == dg[0] and rng.random() < 0.03:
                t = emit("login", t, dg[1], dg[0])
                typ = dg[1]
            else:
                t = emit("login", t, typ)
        end = t + length
        mean_gap = rng.uniform(1.5, 6) * MIN_MS
        while t < end:
            r = rng.random()
            if r < 0.03 and not long_timeouts:
                # idle past U (and maybe past L): timeouts fire
                gap = rng.randrange(min(U, L) + MIN_MS, max(U, L) + 45 * MIN_MS)
            elif r < 0.035 and not long_timeouts:
                gap = rng.choice([U, L])  # exactly at the timeout instant
            else:
                gap = int(rng.expovariate(1 / mean_gap)) + 1
                gap = min(gap, min(U, L) - 1000) if rng.random() < 0.9 else gap
            t += gap
            r = rng.random()
            if r < 0.01:
                t = emit("login", t, typ)  # relogin
            elif r < 0.014 and len(types) > 1:
                typ = rng.choice([x for x in types if x != typ])
                t = emit("login", t, typ)  # switches the seat
            elif r < 0.02:
                t = emit("activity", t, None)  # may be an orphan after a timeout
            elif r < 0.2:
                t = emit("activity", t, typ)
            else:
                t = emit("activity", t, None if rng.random() < 0.5 else typ)
        if rng.random() < 0.6:
            t = emit("logout", t + rng.randrange(1000, 5 * MIN_MS))
        elif rng.random() < 0.05 and not long_timeouts:
            t = emit("logout", t + max(U, L) + rng.randrange(MIN_MS, 10 * MIN_MS))  # orphan
        return t

    # ---- outputs ----

    def total(self):
        return sum(len(v) for v in self.events.values())

    def write_files(self, folder):
        """One NDJSON file per org (its send order); returns {org: path}."""
        paths = {}
        for org, evs in self.events.items():
            p = os.path.join(folder, f"events-{org}.ndjson")
            with open(p, "w") as f:
                for e in evs:
                    f.write(json.dumps(e, separators=(",", ":")) + "\n")
            paths[org] = p
        return paths

    def settings(self, org):
        return ORGS[org]["settings"]

    def types(self, org):
        return [t for t, _ in ORGS[org]["types"]]

    def local_dates(self, org):
        """The local dates the org's events (sentinel included) touch."""
        tz = ZoneInfo(ORGS[org]["settings"]["timezone"])
        evs = self.events[org]
        a = dt.datetime.fromtimestamp(evs[0]["ts"] / 1000, tz).date()
        b = dt.datetime.fromtimestamp(evs[-1]["ts"] / 1000, tz).date()
        return [a + dt.timedelta(days=i) for i in range((b - a).days + 1)]

    def tz(self, org):
        return ZoneInfo(ORGS[org]["settings"]["timezone"])

    def _index(self, org, typ):
        key = (org, typ)
        if key not in self._idx:
            held = sorted((h for h in self.holds[org] if typ == "all" or h[1] == typ),
                          key=lambda h: h[2])
            deltas = {}
            for h in held:
                deltas[h[2]] = deltas.get(h[2], 0) + 1
                if h[3] is not None:
                    deltas[h[3]] = deltas.get(h[3], 0) - 1
            times, levels, level = [], [], 0
            for t in sorted(deltas):
                level += deltas[t]
                times.append(t)
                levels.append(level)
            counts = sorted((t, what, user) for what, ctyp, t, user in self.counts[org]
                            if typ == "all" or ctyp == typ)
            self._idx[key] = (held, [h[2] for h in held], times, levels, counts,
                              [c[0] for c in counts])
        return self._idx[key]

    def row(self, org, typ, t0, t1):
        """The usage row of SPEC.md section 4 for license type typ ('all':
        any) over the instants [t0, t1), from the model: peak and in_use_end
        from the seats held (start <= t < end; changes at one instant apply
        at once), users holding a seat at some instant, and the counts."""
        held, starts, times, levels, counts, ctimes = self._index(org, typ)
        i0 = bisect.bisect_right(times, t0)
        i1 = bisect.bisect_left(times, t1)
        at_t0 = levels[i0 - 1] if i0 else 0
        row = {"peak": max([at_t0] + levels[i0:i1]),
               "in_use_end": levels[i1 - 1] if i1 else 0}
        users = set()
        for h in held[:bisect.bisect_left(starts, t1)]:
            if h[3] is None or h[3] > t0:
                users.add(h[0])
        row["users"] = len(users)
        for what in ("logins", "logouts", "user_timeouts", "license_timeouts", "denials",
                     "downgrades"):
            row[what] = 0
        den, dng = set(), set()
        for t, what, user in counts[bisect.bisect_left(ctimes, t0):
                                    bisect.bisect_left(ctimes, t1)]:
            if what in row:
                row[what] += 1
                if what == "denials":
                    den.add(user)
                elif what == "downgrades":
                    dng.add(user)
        row["denied_users"], row["downgraded_users"] = len(den), len(dng)
        return row

    def day_bounds(self, org, date):
        tz = self.tz(org)
        d = dt.date.fromisoformat(date)
        a = dt.datetime(d.year, d.month, d.day, tzinfo=tz)
        b = a + dt.timedelta(days=1)
        b = dt.datetime(b.year, b.month, b.day, tzinfo=tz)
        return int(a.timestamp() * 1000), int(b.timestamp() * 1000)

    def session_records(self, org, ids=None):
        """{session_id: record}; ids: the ids the pipeline gave, which may
        use the other counting of n (see UserModel._emit): the records are
        then keyed the way the pipeline keys them."""
        recs = self.records[org]
        if ids is None:
            return recs
        alt = self.alt_ids[org]
        if not any(sid not in recs for sid in ids):
            return recs
        return {alt.get(sid, sid): r for sid, r in recs.items()}

    def open_sessions(self, org):
        return sorted(r["session_id"] for r in self.records[org].values()
                      if r["end_reason"] == "open")

    def holding(self, org):
        out = {}
        for h in self.holds[org]:
            if h[3] is None:
                out[h[1]] = out.get(h[1], 0) + 1
        return out
