-- Runs once on the primary's first start (after POSTGRESQL_DATABASE=voicehelper is created).
CREATE DATABASE grafana;
CREATE DATABASE admin_portal;
