"""Named SQL queries shipped with actstore (`actstore query --named NAME`); one .sql file each."""
