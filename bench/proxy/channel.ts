// How a simulated proxy reaches the server: the ADS method, and the gRPC channel
// options that make a grpc-js client behave as an Envoy does on the wire.
import type * as grpc from '@grpc/grpc-js';

export const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/** Messages go in and out as the bytes they are: the proxies read them with their own wire code. */
export const passThrough = (b: Buffer): Buffer => b;

/** Envoy's default HTTP/2 windows (initial_stream_window_size, initial_connection_window_size). */
export const ENVOY_WINDOW = 256 * 1024 * 1024;

export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // Without it, channels to one address share a subchannel, so every proxy of the
  // process would ride one HTTP/2 connection; real proxies each have their own.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
  // HTTP/2 flow-control windows as Envoy opens them by default: with HTTP/2's own
  // 64 KiB a proxy would have to send a WINDOW_UPDATE every 64 KiB of a 0.6 MB sync,
  // which Envoy never does.
  'grpc-node.flow_control_window': ENVOY_WINDOW,
};
