# Sensor board link and outputs (board_link.h, outputs.h).
