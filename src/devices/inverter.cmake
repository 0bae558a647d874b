# Inverter Modbus client (inverter_client.h).
