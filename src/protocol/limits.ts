/** Sizes the broker enforces, shared by the embedded broker and the Mosquitto config Otto writes. */

/** The largest MQTT packet a client may send: desired states of big nodes fit. */
export const MAX_MQTT_PACKET_BYTES = 1024 * 1024;
