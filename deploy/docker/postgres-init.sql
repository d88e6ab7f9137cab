-- Runs once, when the PostgreSQL volume is first initialised: the Dagster instance's database
-- beside the operational one (POSTGRES_DB=odavl). The migrate service then migrates both.
CREATE DATABASE dagster;
