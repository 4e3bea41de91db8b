-- Cluster mode: the nodes serving this database and who owns which partition of the sessions.
-- Times are the database's own (now()), so the nodes' clocks never matter.

-- How many partitions sessions hash into: fixed when the database is made.
CREATE TABLE cluster_settings (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (singleton),
    partitions INTEGER NOT NULL CHECK (partitions > 0)
);
INSERT INTO cluster_settings (partitions) VALUES (256);

-- The nodes, each with the address the others reach it at and its last sign of life.
CREATE TABLE cluster_nodes (
    node_id TEXT PRIMARY KEY,
    advertise_url TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- One lease per partition: its owner until it expires (NULL once handed back), and an epoch
-- that grows each time the partition changes hands.
CREATE TABLE partition_leases (
    partition INTEGER PRIMARY KEY,
    owner TEXT,
    epoch BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
