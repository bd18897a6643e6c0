"""How reproducible GraSP and Fisher are: Spearman between scores with init seeds 0 and 1, and with two batches,
on 80 random cifar10 rows of NAS-Bench-Suite-Zero (PyTorch init), and each against NASLib's values.

Usage: NASX_DATA=../shared/data python benchmarks/exploratory/grasp_stability.py
"""
import csv,gzip,random,numpy as np
from scipy.stats import spearmanr
from nasx.data import load_images
from nasx.evaluator import Evaluator
from nasx_nats.tss import NatsTopologySpace
from nasx_proxies.gradients import Grasp, Fisher
import os
D=os.environ['NASX_DATA']
rows=[r for r in csv.DictReader(gzip.open(f'{D}/naslib_zc_nb201_subset.csv.gz','rt')) if r['dataset']=='cifar10']
rows=random.Random(0).sample(rows,80)
space=NatsTopologySpace(dataset='cifar10')
b=load_images(f'{D}/cifar10_test_512_jpeg.npz','cifar10')
from nasx.data import Batch
b2=Batch(b.images[64:128],b.labels[64:128],'second')
res={}
for name,batch,seed in [('s0',b,0),('s1',b,1),('b2',b2,0)]:
    ev=Evaluator(space,[Grasp(),Fisher()],batch,init='pytorch',init_seed=seed)
    res[name]=[ev.evaluate(space.decode(r['arch'])).scores for r in rows]
for p,c in [('grasp','grasp'),('fisher','fisher')]:
    g=lambda k:[s[p] for s in res[k]]
    ref=[float(r[c]) for r in rows]
    print(p,'seed0 vs seed1',spearmanr(g('s0'),g('s1'))[0],'batch1 vs batch2',spearmanr(g('s0'),g('b2'))[0],'vs naslib',spearmanr(g('s0'),ref)[0], spearmanr(g('s1'),ref)[0])
