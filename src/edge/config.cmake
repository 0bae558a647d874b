# Edge configuration (config.h): TOML, check-config, hash.
target_sources(cellguard_edge PRIVATE config.cpp)
target_link_libraries(cellguard_edge PUBLIC tomlplusplus::tomlplusplus OpenSSL::Crypto)
cellguard_test(edge_config_test SOURCES config_test.cpp DEPS cellguard_edge)
