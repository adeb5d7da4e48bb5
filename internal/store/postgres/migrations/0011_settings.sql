-- A few named values about the installation, such as the public URL the
-- server was last reached at, which admin commands print links on.
CREATE TABLE settings (
	key   text NOT NULL PRIMARY KEY,
	value text NOT NULL
);
