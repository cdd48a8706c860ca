"""The MQTT broker: Mosquitto's files and process, the client every part uses."""
