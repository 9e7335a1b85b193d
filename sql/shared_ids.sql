-- Sentence ids shared by each pair of languages, per model and modality (the cross-lingual key).
WITH ids AS (
    SELECT DISTINCT model, modality, lang, sentence_id FROM activations
)
SELECT a.model, a.modality, a.lang AS lang_a, b.lang AS lang_b, COUNT(*) AS shared_ids
FROM ids AS a
JOIN ids AS b
  ON a.model = b.model AND a.modality = b.modality AND a.sentence_id = b.sentence_id
WHERE a.lang < b.lang
GROUP BY a.model, a.modality, a.lang, b.lang
ORDER BY a.model, a.modality, a.lang, b.lang
