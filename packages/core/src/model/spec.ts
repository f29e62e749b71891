/**
 * The model described as data, in the spirit of cuda-convnet2's layer configs:
 * an ordered list of layers, each owned by the towers that compute it, with the
 * points where a layer's input crosses from the other tower made explicit.
 *
 * Every tower runs the same list. A layer with `input: 'both'` reads the
 * concatenation (channel-wise) of both towers' outputs of the layer before it:
 * these are the crossing points (pool2->conv3, pool5->fc6, fc6->fc7, fc7->fc8).
 */

export type TowerIndex = 0 | 1;

/** Where a conv or fc layer's input comes from. */
export type InputSource = 'image' | 'own' | 'both';

export interface ConvLayer {
  readonly type: 'conv';
  readonly name: string;
  /** Output channels computed by one tower (the paper's per-GPU count). */
  readonly filtersPerTower: number;
  readonly size: number;
  readonly stride: number;
  readonly pad: number;
  readonly input: InputSource;
  /** The paper's bias initialisation: 1 for conv2, conv4, conv5, fc6, fc7; 0 elsewhere. */
  readonly biasInit: 0 | 1;
}

export interface ReluLayer {
  readonly type: 'relu';
  readonly name: string;
}

/**
 * Cross-channel local response normalisation, in the paper's convention:
 * b = a / (k + alpha * sum_{j in n neighbours} a_j^2)^beta, alpha NOT divided by n.
 */
export interface LrnLayer {
  readonly type: 'lrn';
  readonly name: string;
  readonly size: number;
  readonly alpha: number;
  readonly beta: number;
  readonly k: number;
}

export interface MaxPoolLayer {
  readonly type: 'maxpool';
  readonly name: string;
  readonly size: number;
  readonly stride: number;
}

export interface FcLayer {
  readonly type: 'fc';
  readonly name: string;
  /** Units computed by one tower; for the classifier (`classifier: true`) all classes, on tower 0 only. */
  readonly unitsPerTower: number;
  readonly input: 'own' | 'both';
  readonly biasInit: 0 | 1;
  /**
   * The last layer. As in cuda-convnet2, it runs on tower 0 with both towers'
   * fc7 as input; tower 1 sends its fc7 across and gets the gradient back.
   */
  readonly classifier?: boolean;
}

export interface DropoutLayer {
  readonly type: 'dropout';
  readonly name: string;
  readonly rate: number;
}

export type LayerSpec = ConvLayer | ReluLayer | LrnLayer | MaxPoolLayer | FcLayer | DropoutLayer;

export type ParamLayer = ConvLayer | FcLayer;

export interface ModelSpec {
  readonly name: string;
  /** Square input side in pixels (224 for the paper preset, 32 for cifar). */
  readonly inputSize: number;
  readonly inputChannels: number;
  readonly classes: number;
  readonly towers: 2;
  readonly layers: readonly LayerSpec[];
  /**
   * Standard deviation of the N(0, std^2) weight initialisation: a number
   * (paper: 0.01 for every layer) or 'he', sqrt(2 / fan_in) per layer (params.ts).
   */
  readonly initStd: number | 'he';
  /**
   * The network's input is (pixel - mean_c) / inputScale, pixels in 0..255 and
   * mean_c the training set's per-channel mean. The paper only subtracts the
   * mean (inputScale 1): its N(0, 0.01^2) initialisation is sized for pixel
   * values of that magnitude, and with inputs scaled down by 64 the signal
   * dies out layer by layer and the net stays at chance.
   */
  readonly inputScale: number;
}

export function isParamLayer(l: LayerSpec): l is ParamLayer {
  return l.type === 'conv' || l.type === 'fc';
}
