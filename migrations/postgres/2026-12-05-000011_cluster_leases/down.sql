DROP TABLE partition_leases;
DROP TABLE cluster_nodes;
DROP TABLE cluster_settings;
