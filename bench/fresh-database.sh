# Sourced by the bench scripts: fresh_database URL empties the database a run starts on. A
# SQLite URL's file is deleted; a PostgreSQL URL's database is dropped and created again
# through psql (connecting to the same cluster's `postgres` database).
fresh_database() {
    local url="$1"
    case "$url" in
        sqlite://*) rm -f "${url#sqlite://}" "${url#sqlite://}-wal" "${url#sqlite://}-shm" ;;
        postgres://*|postgresql://*)
            local name="${url##*/}" admin="${url%/*}/postgres"
            psql -q "$admin" -c "SET client_min_messages = warning" \
                -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" ;;
        *) echo "unsupported DATABASE_URL: $url" >&2; exit 2 ;;
    esac
}
