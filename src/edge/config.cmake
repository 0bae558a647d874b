# Edge configuration (config.h): TOML, check-config, hash.
