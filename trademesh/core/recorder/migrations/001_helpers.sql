-- Helpers the recorder's tables and inserts use.

-- Nanoseconds since the Unix epoch (how every time is stored) as a timestamptz, for people
-- reading the tables (microsecond precision).
CREATE FUNCTION tm_time(ns bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN to_timestamp(ns / 1e9::float8);

-- A wire decimal ("65000.50") as NUMERIC. PostgreSQL's own cast also takes "NaN",
-- "Infinity", "1e5" and surrounding blanks; the wire allows none of them, so anything with
-- other characters than digits, "-" and "." fails the statement (the bus entry is then
-- retried and dead-lettered), as does anything the cast then refuses ("1.2.3", "", "-").
-- Plain SQL, so the planner inlines it: no function call per value.
CREATE FUNCTION tm_decimal(value text, what text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN value ~ '^[-0-9.]+$' THEN value::numeric
    ELSE (what || ' is not a plain decimal: ' || left(value, 60))::numeric
END;

-- An optional wire decimal: "" is NULL.
CREATE FUNCTION tm_decimal_or_null(value text, what text) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN value = '' THEN NULL ELSE tm_decimal(value, what) END;

-- Creates a table partitioned by time: a TimescaleDB hypertable (one-day chunks) when the
-- extension is installed, else a native range-partitioned table whose daily partitions the
-- recorder creates, plus a DEFAULT partition for rows outside the years it partitions.
CREATE FUNCTION tm_create_timed_table(name text, time_column text, body text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE format('CREATE TABLE %I (%s)', name, body);
        EXECUTE format(
            'SELECT create_hypertable(%L, %L, chunk_time_interval => 86400000000000::bigint)',
            name, time_column
        );
    ELSE
        EXECUTE format('CREATE TABLE %I (%s) PARTITION BY RANGE (%I)', name, body, time_column);
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', name || '_default', name);
    END IF;
END
$$;
