"""Solutions to the exercises of lesson 11 (packing bits)."""

import torch


def pack_2bit(u: torch.Tensor) -> torch.Tensor:
    """Unsigned 2-bit codes (uint8 values 0..3) four to a byte, code i of each group of four in bits
    2i and 2i+1 (the first code in the lowest bits); the last byte is padded with zero codes."""
    u = u.flatten().to(torch.uint8)
    pad = (-len(u)) % 4
    u = torch.cat([u, torch.zeros(pad, dtype=torch.uint8)]).reshape(-1, 4)   # (bytes, 4)
    return u[:, 0] | (u[:, 1] << 2) | (u[:, 2] << 4) | (u[:, 3] << 6)


def unpack_trits_by_hand(data: torch.Tensor, n: int) -> torch.Tensor:
    """Bytes holding five base-3 digits each (t0 + 3 t1 + 9 t2 + 27 t3 + 81 t4) back to n digits
    (uint8 values 0..2), the lowest digit first: digit = byte mod 3, byte = byte div 3, five times."""
    rest = data.to(torch.int64)
    digits = []
    for _ in range(5):
        digits.append(rest % 3)
        rest = rest // 3
    return torch.stack(digits, dim=1).flatten()[:n].to(torch.uint8)          # (bytes * 5,) -> (n,)


def paper_footprint_mib(config, weight_bits: int, embedding_bits: int) -> float:
    """The paper's size of a BART of shape `config` (a BartConfig: its layers included), in MiB:
    every linear weight matrix at weight_bits, the token embedding (tied to the LM head, counted
    once) at embedding_bits, and everything else in fp32 (4 bytes): biases, LayerNorms, the two
    position tables (max_position_embeddings + 2 rows each) and final_logits_bias (one per token)."""
    d, v = config.d_model, config.vocab_size
    enc_linear = 4 * d * d + 2 * d * config.encoder_ffn_dim                # q, k, v, out; fc1, fc2
    dec_linear = 8 * d * d + 2 * d * config.decoder_ffn_dim                # self- and cross-attention; fc1, fc2
    enc_other = 4 * d + config.encoder_ffn_dim + d + 2 * 2 * d             # biases; 2 LayerNorms
    dec_other = 8 * d + config.decoder_ffn_dim + d + 3 * 2 * d             # biases; 3 LayerNorms
    linear = config.encoder_layers * enc_linear + config.decoder_layers * dec_linear
    other = (config.encoder_layers * enc_other + config.decoder_layers * dec_other
             + 2 * (config.max_position_embeddings + 2) * d + 2 * 2 * d + v)  # positions, layernorm_embedding, bias
    bits = linear * weight_bits + v * d * embedding_bits + 32 * other
    return bits / 8 / 2 ** 20
