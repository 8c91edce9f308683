-- Frozen schema version 6 (PRAGMA user_version = 6): V1 to V6 of src/schema.rs (V6 adds
-- redactions and campaigns.retention_days), as SQLite stores it in a fresh store. Never edit a frozen file; tests/migrations.rs migrates it and compares.
CREATE TABLE account_state (
    resident_id TEXT PRIMARY KEY,
    level1      INTEGER NOT NULL,
    level2      INTEGER NOT NULL,
    portal      INTEGER NOT NULL,
    need        TEXT    NOT NULL GENERATED ALWAYS AS (
        CASE WHEN level2 = 2 AND portal = 1 THEN 'done'
             WHEN level2 = 2 THEN 'portal_guidance'
             WHEN level2 = 1 THEN 'level2_to_activate'
             WHEN level1 = 2 THEN 'level2_to_take'
             WHEN level1 = 1 THEN 'level1_pending'
             ELSE 'no_account' END) STORED
) STRICT, WITHOUT ROWID;

CREATE TABLE assignments (
    id          TEXT PRIMARY KEY,
    officer_id  TEXT,
    target_kind TEXT,
    target_id   TEXT,
    active      INTEGER,
    stamps      BLOB
) STRICT;

CREATE TABLE assists (
    id              TEXT PRIMARY KEY,
    resident_id     TEXT    NOT NULL,
    officer_id      TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL,
    day             TEXT    NOT NULL,
    step            TEXT    NOT NULL,
    failure         TEXT,
    receiving_point TEXT,
    note            TEXT,
    retracted       INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE campaigns (
    id         TEXT PRIMARY KEY,
    name       TEXT,
    start_date TEXT,
    end_date   TEXT,
    target     INTEGER,
    unit_code  TEXT,
    stamps     BLOB
) STRICT;

CREATE TABLE households (
    id           TEXT PRIMARY KEY,
    code         TEXT,
    village_code TEXT,
    address      TEXT,
    head_id      TEXT,
    note         TEXT,
    deleted      INTEGER NOT NULL DEFAULT 0,
    stamps       BLOB,
    -- Derived, not replicated: residents still needing help, and the latest visit.
    needing       INTEGER NOT NULL DEFAULT 0,
    last_visit_id TEXT,
    last_at_ms    INTEGER,
    last_day      TEXT,
    last_outcome  TEXT,
    revisit_at_ms INTEGER
) STRICT;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) STRICT, WITHOUT ROWID;

CREATE TABLE officers (
    id        TEXT PRIMARY KEY,
    name      TEXT,
    role      TEXT,
    unit_code TEXT,
    deleted   INTEGER NOT NULL DEFAULT 0,
    stamps    BLOB
) STRICT;

CREATE TABLE oplog (
    replica BLOB    NOT NULL,
    counter INTEGER NOT NULL,
    hlc     INTEGER NOT NULL,
    body    BLOB    NOT NULL,
    PRIMARY KEY (replica, counter)
) STRICT, WITHOUT ROWID;

CREATE TABLE outreach (
    id         TEXT PRIMARY KEY,
    unit_code  TEXT    NOT NULL,
    officer_id TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at_ms      INTEGER NOT NULL,
    day        TEXT    NOT NULL,
    place      TEXT    NOT NULL,
    people     INTEGER NOT NULL,
    note       TEXT,
    retracted  INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE quotas (
    id           TEXT PRIMARY KEY,
    campaign_id  TEXT,
    subject_kind TEXT,
    subject_id   TEXT,
    period       TEXT,
    metric       TEXT,
    target       INTEGER,
    stamps       BLOB
) STRICT;

CREATE TABLE replicas (
    replica    BLOB PRIMARY KEY,
    contiguous INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE residents (
    id             TEXT PRIMARY KEY,
    household_id   TEXT,
    full_name      TEXT,
    name_folded    TEXT,
    name_exact     TEXT,
    birth_date     TEXT,
    gender         TEXT,
    id_number      TEXT,
    phone          TEXT,
    relation       TEXT,
    roster_account TEXT,
    note           TEXT,
    deleted        INTEGER NOT NULL DEFAULT 0,
    stamps         BLOB
, agency TEXT) STRICT;

CREATE TABLE retractions (
    fact_id TEXT PRIMARY KEY,
    reason  TEXT,
    hlc     INTEGER NOT NULL,
    replica BLOB    NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    unit_code    TEXT    NOT NULL,
    officer_id   TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    place        TEXT    NOT NULL,
    starts_at_ms INTEGER NOT NULL,
    ends_at_ms   INTEGER NOT NULL,
    day          TEXT    NOT NULL,
    applications INTEGER NOT NULL,
    note         TEXT,
    retracted    INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE TABLE sync_cursors (
    peer   TEXT PRIMARY KEY,
    cursor TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE units (
    code        TEXT PRIMARY KEY,
    parent_code TEXT,
    level       TEXT,
    kind        TEXT,
    name        TEXT,
    stamps      BLOB
) STRICT, WITHOUT ROWID;

CREATE TABLE visits (
    id            TEXT PRIMARY KEY,
    household_id  TEXT    NOT NULL,
    officer_id    TEXT    NOT NULL,
    at_ms         INTEGER NOT NULL,
    day           TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    revisit_at_ms INTEGER,
    note          TEXT,
    lat_e6        INTEGER,
    lon_e6        INTEGER,
    retracted     INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;

CREATE INDEX assignments_officer ON assignments(officer_id, target_kind);

CREATE INDEX assists_officer_day ON assists(officer_id, day);

CREATE INDEX assists_resident ON assists(resident_id);

CREATE INDEX households_village ON households(village_code);

CREATE INDEX outreach_unit_day ON outreach(unit_code, day);

CREATE INDEX quotas_subject ON quotas(subject_kind, subject_id, period);

CREATE INDEX residents_agency ON residents(agency) WHERE agency IS NOT NULL;

CREATE INDEX residents_household ON residents(household_id);

CREATE INDEX residents_id_number ON residents(id_number);

CREATE INDEX residents_name ON residents(name_folded, name_exact, deleted, id);

CREATE INDEX residents_phone ON residents(phone);

CREATE INDEX sessions_unit_day ON sessions(unit_code, day);

CREATE INDEX units_parent ON units(parent_code);

CREATE INDEX visits_household ON visits(household_id, at_ms);

CREATE INDEX visits_officer_day ON visits(officer_id, day);

CREATE TABLE segments (
    replica      BLOB    NOT NULL,
    first        INTEGER NOT NULL,
    last         INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    signed_at_ms INTEGER NOT NULL,
    signature    BLOB    NOT NULL,
    village_code TEXT, counters BLOB,
    PRIMARY KEY (replica, first)
) STRICT, WITHOUT ROWID;

CREATE TABLE segment_deliveries (
    peer    TEXT    NOT NULL,
    replica BLOB    NOT NULL,
    first   INTEGER NOT NULL,
    PRIMARY KEY (peer, replica, first)
) STRICT, WITHOUT ROWID;

CREATE TABLE certificates (
    replica     BLOB PRIMARY KEY,
    certificate BLOB NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE redactions (
    fact_id TEXT PRIMARY KEY
) STRICT, WITHOUT ROWID;
ALTER TABLE campaigns ADD COLUMN retention_days INTEGER;
