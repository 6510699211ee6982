DROP TABLE files;
DROP TABLE tasks;
DROP TABLE parameters;
DROP TABLE events;
DROP TABLE devices;
