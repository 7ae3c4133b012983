"""Solutions to the exercises of lesson 09 (distillation: a student made of teacher layers)."""

import torch


def student_parameters(config, encoder_layers: int, decoder_layers: int) -> int:
    """The parameter count of a student with that many layers, without building it: the teacher's
    shape (a BartConfig) gives every tensor's size. Counted as minidq's Bart counts them: the token
    embedding once (tied to the LM head), the learned positions with BART's offset of 2 rows;
    final_logits_bias is a buffer, not a parameter."""
    d, v, p = config.d_model, config.vocab_size, config.max_position_embeddings
    layer_norm = 2 * d                                      # gain and bias

    def attention():
        return 4 * (d * d + d)                              # q, k, v, out projections with biases

    def ffn(dim):
        return d * dim + dim + dim * d + d                  # fc1, fc2 with biases

    encoder_layer = attention() + ffn(config.encoder_ffn_dim) + 2 * layer_norm
    decoder_layer = 2 * attention() + ffn(config.decoder_ffn_dim) + 3 * layer_norm
    total = v * d                                           # shared token embedding (= LM head)
    total += 2 * (p + 2) * d                                # encoder and decoder positions (offset 2)
    total += 2 * layer_norm                                 # layernorm_embedding of each stack
    if getattr(config, "pre_layer_norm", False):
        total += 2 * layer_norm                             # mBART's final LayerNorm of each stack
    return total + encoder_layers * encoder_layer + decoder_layers * decoder_layer


def hidden_loss_sum(student: tuple, teacher: tuple, layer_map: list, mask: torch.Tensor) -> torch.Tensor:
    """The authors' reduction of the hidden-state term: the masked MSEs of the pairs (embeddings,
    then student layer i with teacher layer layer_map[i]) added up instead of averaged.
    Hidden-state tuples hold (embeddings, layer 1, ..., layer n); mask (B, T) marks real positions."""
    pairs = [(0, 0)] + [(i + 1, t + 1) for i, t in enumerate(layer_map)]
    m = mask[..., None].to(student[0].dtype)                # (B, T, 1)
    total = 0
    for s, t in pairs:
        full = m.expand_as(student[s])
        total = total + ((student[s] - teacher[t]) ** 2 * full).sum() / full.sum()
    return total
